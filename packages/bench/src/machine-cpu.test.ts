import { parseProcStat, summarizeCpu, type CpuTicks } from "./machine-cpu";

const procStat = (ticks: string): string => `cpu  ${ticks} 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 12345\nctxt 999\n`;

describe("machine CPU use from /proc/stat", () => {
  test("the aggregate cpu line is read field by field; per-CPU lines are not", () => {
    expect(parseProcStat(procStat("100 5 40 800 20 1 4 30"))).toEqual({
      user: 100,
      nice: 5,
      system: 40,
      idle: 800,
      iowait: 20,
      irq: 1,
      softirq: 4,
      steal: 30,
    });
  });

  test("no aggregate line, too few fields or a non-number gives null", () => {
    expect(parseProcStat("cpu0 1 2 3 4 5 6 7 8\n")).toBeNull();
    expect(parseProcStat("cpu  1 2 3\n")).toBeNull();
    expect(parseProcStat("cpu  1 2 3 x 5 6 7 8\n")).toBeNull();
    expect(parseProcStat("")).toBeNull();
  });

  test("shares are of the time between the readings; steal and iowait are not busy", () => {
    const before: CpuTicks = { user: 1000, nice: 10, system: 300, idle: 5000, iowait: 100, irq: 0, softirq: 50, steal: 7 };
    // +500 total: user 200, nice 50, system 60, softirq 10, idle 150, iowait 20, steal 10.
    const after: CpuTicks = { user: 1200, nice: 60, system: 360, idle: 5150, iowait: 120, irq: 0, softirq: 60, steal: 17 };
    const summary = summarizeCpu(before, after)!;
    expect(summary.busyPercent).toBeCloseTo(64, 6);
    expect(summary.userPercent).toBeCloseTo(50, 6);
    expect(summary.systemPercent).toBeCloseTo(14, 6);
    expect(summary.iowaitPercent).toBeCloseTo(4, 6);
    expect(summary.stealPercent).toBeCloseTo(2, 6);
  });

  test("no elapsed ticks, or counters that went back, give null", () => {
    const ticks: CpuTicks = { user: 1, nice: 1, system: 1, idle: 1, iowait: 1, irq: 1, softirq: 1, steal: 1 };
    expect(summarizeCpu(ticks, ticks)).toBeNull();
    expect(summarizeCpu({ ...ticks, idle: 10 }, ticks)).toBeNull();
  });
});
