import { TermRuns } from "./term-runs";

describe("TermRuns", () => {
  it("answers the term of any LSN from a few runs, and forgets a truncated suffix", () => {
    const terms = new TermRuns();
    expect(terms.lastTerm).toBe(0n);
    for (let lsn = 1n; lsn <= 100n; lsn++) terms.record(lsn, lsn <= 40n ? 1n : lsn <= 70n ? 3n : 4n);
    expect([1n, 40n, 41n, 70n, 71n, 100n].map((lsn) => terms.termAt(lsn))).toEqual([1n, 1n, 3n, 3n, 4n, 4n]);
    expect(terms.lastTerm).toBe(4n);
    terms.truncateAfter(55n);
    expect(terms.lastTerm).toBe(3n);
    expect(terms.termAt(55n)).toBe(3n);
    terms.record(56n, 5n);
    expect(terms.termAt(56n)).toBe(5n);
    expect(() => terms.record(57n, 4n)).toThrow(/term went back/);
  });
});
