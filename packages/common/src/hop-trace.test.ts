import { HopTrace, isTracedCommitTime, markCommitTime, PendingLsnTrace } from "./hop-trace";

describe("HopTrace", () => {
  it("marks a commit time traced by making it odd, 1 ns away at most", () => {
    for (const time of [1_000n, 1_001n]) {
      expect(isTracedCommitTime(markCommitTime(time, true))).toBe(true);
      expect(isTracedCommitTime(markCommitTime(time, false))).toBe(false);
      expect(markCommitTime(time, true) - time).toBeLessThanOrEqual(1n);
      expect(time - markCommitTime(time, false)).toBeLessThanOrEqual(1n);
    }
  });

  it("keeps the newest records, oldest first, and counts the ones it overwrote", () => {
    const trace = new HopTrace(true, 2);
    trace.record("leader-received", 11n, 100n);
    trace.record("leader-durable", 1n, 200n);
    trace.record("committed", 1n, 300n);
    expect(trace.snapshot()).toEqual({ hops: ["leader-durable", "committed"], keys: ["1", "1"], atNs: ["200", "300"], overwritten: 1 });
  });

  it("records nothing when off", () => {
    const trace = new HopTrace(false, 16);
    trace.record("committed", 1n, 1n);
    expect(trace.snapshot()).toEqual({ hops: [], keys: [], atNs: [], overwritten: 0 });
  });

  it("records a watermark hop for every pending LSN it passes, once", () => {
    const trace = new HopTrace(true, 16);
    const pending = new PendingLsnTrace(trace, "committed");
    pending.add(3n);
    pending.add(5n);
    pending.reached(4n);
    pending.reached(4n);
    expect(trace.snapshot().keys).toEqual(["3"]);
    pending.reached(9n);
    expect(trace.snapshot().keys).toEqual(["3", "5"]);
  });
});
