import { DedupeTable } from "./dedupe-table";

describe("DedupeTable", () => {
  it("answers a known (client, seq) with its first LSN and anything else as new", () => {
    const table = new DedupeTable({ clientsMax: 10, seqsPerClientMax: 10 });
    expect(table.lookup("a", 1n)).toEqual({ kind: "new" });
    table.record("a", 1n, 5n);
    table.record("a", 1n, 9n); // a second copy never replaces the first
    expect(table.lookup("a", 1n)).toEqual({ kind: "duplicate", lsn: 5n });
    expect(table.lookup("a", 2n)).toEqual({ kind: "new" });
    expect(table.lookup("b", 1n)).toEqual({ kind: "new" });
  });

  it("keeps the last seqsPerClientMax seqs per client and refuses older unknown ones", () => {
    const table = new DedupeTable({ clientsMax: 10, seqsPerClientMax: 3 });
    for (let seq = 1n; seq <= 5n; seq++) table.record("a", seq, seq + 100n);
    expect(table.lookup("a", 5n)).toEqual({ kind: "duplicate", lsn: 105n });
    expect(table.lookup("a", 3n)).toEqual({ kind: "duplicate", lsn: 103n });
    expect(table.lookup("a", 2n)).toEqual({ kind: "too-old", oldestSeq: 3n });
    expect(table.lookup("a", 6n)).toEqual({ kind: "new" });
  });

  it("evicts the least recently written client past clientsMax", () => {
    const table = new DedupeTable({ clientsMax: 2, seqsPerClientMax: 4 });
    table.record("a", 1n, 1n);
    table.record("b", 1n, 2n);
    table.record("a", 2n, 3n); // a is now the most recent
    table.record("c", 1n, 4n); // evicts b
    expect(table.clientCount).toBe(2);
    expect(table.lookup("b", 1n)).toEqual({ kind: "new" });
    expect(table.lookup("a", 1n)).toEqual({ kind: "duplicate", lsn: 1n });
    expect(table.lookup("c", 1n)).toEqual({ kind: "duplicate", lsn: 4n });
  });

  it("matches a plain model over many wraps of the window, with seqs committed out of order and two clients interleaved", () => {
    const windowMax = 4;
    const table = new DedupeTable({ clientsMax: 10, seqsPerClientMax: windowMax });
    // The model: per client, the committed seqs in commit order; the window is the last windowMax of them.
    const committed = new Map<string, { seq: bigint; lsn: bigint }[]>([
      ["a", []],
      ["b", []],
    ]);
    let lsn = 0n;
    for (let i = 0; i < 60; i++) {
      const client = i % 3 === 0 ? "b" : "a";
      // Pairs committed swapped (2, 1, 4, 3, ...), as concurrent appends can be.
      const seq = BigInt(i % 2 === 0 ? i + 2 : i);
      lsn += 1n;
      table.record(client, seq, lsn);
      committed.get(client)!.push({ seq, lsn });
      for (const [name, history] of committed) {
        const kept = history.slice(-windowMax);
        const evicted = history.slice(0, -windowMax);
        const evictedMax = evicted.reduce((max, e) => (e.seq > max ? e.seq : max), 0n);
        for (const { seq: probe, lsn: expected } of kept) expect(table.lookup(name, probe)).toEqual({ kind: "duplicate", lsn: expected });
        for (const { seq: probe } of evicted) expect(table.lookup(name, probe)).toEqual({ kind: "too-old", oldestSeq: evictedMax + 1n });
      }
    }
  });
});
