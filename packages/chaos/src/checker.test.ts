import {
  checkAgainstLog,
  checkFinalData,
  checkRywReads,
  parseTokens,
  type LoggedTxn,
  type TxnRecord,
  type Violation,
  type ViolationKind,
} from "./checker";

// A small, consistent history: four acknowledged transactions and one whose
// commit failed but was in fact logged (t4), one that never reached the log (t5).
const txns: TxnRecord[] = [
  { token: "t0", keys: ["a", "b"], lsn: 1n },
  { token: "t1", keys: ["b", "c"], lsn: 2n },
  { token: "t2", keys: ["a", "c"], lsn: 3n },
  { token: "t3", keys: ["a"], lsn: 5n },
  { token: "t4", keys: ["b", "c"], lsn: undefined },
  { token: "t5", keys: ["a", "c"], lsn: undefined },
];

const log: LoggedTxn[] = [
  {
    lsn: 1n,
    appends: [
      { key: "a", value: "t0;" },
      { key: "b", value: "t0;" },
    ],
  },
  {
    lsn: 2n,
    appends: [
      { key: "b", value: "t1;" },
      { key: "c", value: "t1;" },
    ],
  },
  {
    lsn: 3n,
    appends: [
      { key: "a", value: "t2;" },
      { key: "c", value: "t2;" },
    ],
  },
  {
    lsn: 4n,
    appends: [
      { key: "b", value: "t4;" },
      { key: "c", value: "t4;" },
    ],
  },
  { lsn: 5n, appends: [{ key: "a", value: "t3;" }] },
];

function correctValues(): Map<string, string> {
  return new Map([
    ["a", "t0;t2;t3;"],
    ["b", "t0;t1;t4;"],
    ["c", "t1;t2;t4;"],
  ]);
}

function kinds(violations: readonly Violation[]): ViolationKind[] {
  return violations.map((v) => v.kind).sort();
}

describe("parseTokens", () => {
  test("splits a well-formed value and flags the rest", () => {
    expect(parseTokens("")).toEqual({ tokens: [], malformed: [] });
    expect(parseTokens("t1;t22;")).toEqual({ tokens: ["t1", "t22"], malformed: [] });
    expect(parseTokens("t1;x;t2").malformed).toEqual(['unterminated "t2"', "x"]);
  });
});

describe("checkFinalData", () => {
  test("a correct final state has no violations", () => {
    const { violations, counts } = checkFinalData(txns, correctValues());
    expect(violations).toEqual([]);
    expect(counts).toMatchObject({ keys: 3, tokens: 9 });
  });

  test("a duplicated acknowledged token is reported", () => {
    const values = correctValues();
    values.set("a", "t0;t2;t2;t3;");
    const { violations } = checkFinalData(txns, values);
    expect(kinds(violations)).toEqual(["duplicate-acked"]);
    expect(violations[0]).toMatchObject({ key: "a", detail: expect.stringContaining("t2") });
  });

  test("a missing acknowledged token is reported", () => {
    const values = correctValues();
    values.set("c", "t2;t4;");
    const { violations } = checkFinalData(txns, values);
    expect(kinds(violations)).toEqual(["missing-acked"]);
    expect(violations[0]).toMatchObject({ key: "c", detail: expect.stringContaining("t1") });
  });

  test("an out-of-order pair is reported", () => {
    const values = correctValues();
    values.set("a", "t0;t3;t2;");
    const { violations } = checkFinalData(txns, values);
    expect(kinds(violations)).toEqual(["out-of-order"]);
    expect(violations[0]!.detail).toMatch(/t2 \(lsn 3\) applied after t3 \(lsn 5\)/);
  });

  test("an unacknowledged token applied twice, one never sent, one on a key it never touched, garbage", () => {
    const values = correctValues();
    values.set("b", "t0;t1;t4;t4;");
    values.set("a", "t0;t2;t3;t99;t1;zz;");
    const { violations } = checkFinalData(txns, values);
    expect(kinds(violations)).toEqual(["duplicate-unacked", "malformed", "never-sent", "wrong-key"]);
  });

  test("an unacknowledged transaction applied to some of its keys only is reported", () => {
    const values = correctValues();
    values.set("c", "t1;t2;");
    const { violations } = checkFinalData(txns, values);
    expect(kinds(violations)).toEqual(["partial"]);
    expect(violations[0]!.detail).toContain("t4");
  });
});

describe("checkAgainstLog", () => {
  test("a final state equal to the log has no violations", () => {
    expect(checkAgainstLog(txns, correctValues(), log).violations).toEqual([]);
  });

  test("data that differs from the log, an ack the log lost, a token logged twice", () => {
    const values = correctValues();
    values.set("b", "t0;t4;t1;");
    const lossy: LoggedTxn[] = [...log.slice(0, 4), { lsn: 5n, appends: [{ key: "a", value: "t2;" }] }];
    const { violations } = checkAgainstLog(txns, values, lossy);
    expect(kinds(violations)).toEqual(["ack-not-in-log", "data-differs-from-log", "data-differs-from-log", "logged-twice"]);
    expect(violations.find((v) => v.kind === "ack-not-in-log")!.detail).toContain("t3");
  });
});

describe("checkRywReads", () => {
  const view = checkAgainstLog(txns, correctValues(), log).view;

  test("reads that saw every acknowledged write up to minLsn pass", () => {
    const reads = [
      { key: "a", minLsn: 3n, appliedLsn: 3n, value: "t0;t2;" },
      { key: "c", minLsn: 2n, appliedLsn: 4n, value: "t1;t2;t4;" },
    ];
    expect(checkRywReads(reads, txns, correctValues(), view)).toEqual([]);
  });

  test("a read older than its minLsn, one that is not a prefix of the final value, one inconsistent with its applied LSN", () => {
    const reads = [
      { key: "a", minLsn: 3n, appliedLsn: 3n, value: "t0;" },
      { key: "b", minLsn: 1n, appliedLsn: 2n, value: "t1;t0;" },
      { key: "c", minLsn: 2n, appliedLsn: 2n, value: "t2;" },
    ];
    const violations = checkRywReads(reads, txns, correctValues(), view);
    expect(kinds(violations)).toEqual([
      "ryw-inconsistent",
      "ryw-inconsistent",
      "ryw-inconsistent",
      "ryw-not-prefix",
      "ryw-not-prefix",
      "ryw-stale",
      "ryw-stale",
    ]);
    expect(
      violations
        .filter((v) => v.kind === "ryw-stale")
        .map((v) => v.key)
        .sort(),
    ).toEqual(["a", "c"]);
    expect(
      violations
        .filter((v) => v.kind === "ryw-not-prefix")
        .map((v) => v.key)
        .sort(),
    ).toEqual(["b", "c"]);
  });
});
