import { parseProcessStat, summarizeProcessCpu } from "./process-cpu";

describe("parseProcessStat", () => {
  it("adds utime and stime, even when the command name holds spaces and parentheses", () => {
    const stat = "4242 (node (shard 1)) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 567 0 0 20 0 11 0 100 0 0";
    expect(parseProcessStat(stat)).toBe(1234 + 567);
  });

  it("returns null for text it cannot read", () => {
    expect(parseProcessStat("")).toBeNull();
    expect(parseProcessStat("1 (x) S 1 2")).toBeNull();
  });
});

describe("summarizeProcessCpu", () => {
  it("gives CPU seconds, cores and ms per transaction between two readings", () => {
    const rows = summarizeProcessCpu(
      new Map([
        ["logstore", 100],
        ["shard-0", 50],
      ]),
      new Map([
        ["logstore", 300],
        ["shard-0", 150],
        ["started-later", 10],
      ]),
      10,
      1000,
    );
    expect(rows).toEqual([
      { name: "logstore", cpuS: 2, cores: 0.2, msPerTxn: 2 },
      { name: "shard-0", cpuS: 1, cores: 0.1, msPerTxn: 1 },
    ]);
  });
});
