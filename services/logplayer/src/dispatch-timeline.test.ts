import { DispatchTimeline } from "./dispatch-timeline";

const MS = 1_000_000n;

describe("DispatchTimeline", () => {
  it("measures a target's lag from the dispatch of the oldest entry it has not acknowledged", () => {
    const timeline = new DispatchTimeline();
    timeline.dispatched(10n, 0n, () => 0n);
    timeline.dispatched(20n, 1000n * MS, () => 0n);
    timeline.dispatched(30n, 2000n * MS, () => 0n);
    expect(timeline.lagSeconds(30n, 30n, 5000n * MS)).toBe(0);
    expect(timeline.lagSeconds(25n, 30n, 5000n * MS)).toBe(3);
    expect(timeline.lagSeconds(20n, 30n, 5000n * MS)).toBe(3);
    expect(timeline.lagSeconds(19n, 30n, 5000n * MS)).toBe(4);
    expect(timeline.lagSeconds(0n, 30n, 5000n * MS)).toBe(5);
    expect(timeline.lagSeconds(0n, null, 5000n * MS)).toBe(0);
  });

  it("folds dispatches closer than the spacing into one sample that keeps the earliest time", () => {
    const timeline = new DispatchTimeline();
    timeline.dispatched(10n, 0n, () => 0n);
    timeline.dispatched(20n, 50n * MS, () => 0n);
    expect(timeline.lagSeconds(15n, 20n, 1000n * MS)).toBe(1);
  });

  it("drops samples every target has acknowledged, keeping the newest", () => {
    const timeline = new DispatchTimeline();
    timeline.dispatched(10n, 0n, () => 0n);
    timeline.dispatched(20n, 1000n * MS, () => 0n);
    timeline.dispatched(30n, 2000n * MS, () => 20n);
    // The samples up to 20 are gone: a target at 5 (acknowledged elsewhere: cannot happen) reads from the oldest kept.
    expect(timeline.lagSeconds(5n, 30n, 3000n * MS)).toBe(1);
  });

  it("keeps at most SAMPLES_MAX samples", () => {
    const timeline = new DispatchTimeline();
    const count = DispatchTimeline.SAMPLES_MAX + 10;
    for (let i = 1; i <= count; i += 1) timeline.dispatched(BigInt(i), BigInt(i) * 200n * MS, () => 0n);
    // Lag from the oldest sample kept (LSN 11), not LSN 1.
    expect(timeline.lagSeconds(0n, BigInt(count), BigInt(count) * 200n * MS)).toBeCloseTo((DispatchTimeline.SAMPLES_MAX - 1) * 0.2, 6);
  });
});
