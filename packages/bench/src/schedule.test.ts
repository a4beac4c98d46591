import { OpenLoopScheduler, slotOffsetNs, slotsDueAt, slotTimeNs } from "./schedule";

const S = 1_000_000_000n;

describe("open-loop schedule", () => {
  const schedule = { startNs: 5n * S, rate: 1000, slotsTotal: 10_000 };

  it("slot i is due at start + i/rate; slot 0 at the start itself", () => {
    expect(slotTimeNs(schedule, 0)).toBe(5n * S);
    expect(slotTimeNs(schedule, 1)).toBe(5n * S + 1_000_000n);
    expect(slotTimeNs(schedule, 2500)).toBe(7n * S + 500_000_000n);
    expect(slotsDueAt(schedule, 5n * S - 1n)).toBe(0);
    expect(slotsDueAt(schedule, 5n * S)).toBe(1);
    expect(slotsDueAt(schedule, 5n * S + 999_999n)).toBe(1);
    expect(slotsDueAt(schedule, 5n * S + 1_000_000n)).toBe(2);
  });

  it("never counts past the last slot", () => {
    expect(slotsDueAt(schedule, 1000n * S)).toBe(10_000);
  });

  it("agrees with slotTimeNs at every boundary, for awkward fractional rates", () => {
    for (const rate of [1, 3, 7.5, 333.33, 1000, 4999.9, 100_000]) {
      const s = { startNs: 123n, rate, slotsTotal: 2000 };
      for (let slot = 0; slot < 2000; slot += 37) {
        const t = slotTimeNs(s, slot);
        // At its time the slot is due; one ns earlier it is not (unless it shares the ns with the previous one).
        expect(slotsDueAt(s, t)).toBeGreaterThan(slot);
        if (slot > 0 && slotOffsetNs(rate, slot - 1) < slotOffsetNs(rate, slot)) expect(slotsDueAt(s, t - 1n)).toBe(slot);
      }
    }
  });

  it("takeDue hands out every missed slot at once after a late timer, each exactly once", () => {
    const scheduler = new OpenLoopScheduler({ startNs: 0n, rate: 1000, slotsTotal: 100 });
    expect(scheduler.takeDue(0n)).toEqual({ from: 0, to: 1 });
    expect(scheduler.takeDue(500_000n)).toEqual({ from: 1, to: 1 }); // nothing new yet
    expect(scheduler.delayToNextMs(500_000n)).toBeCloseTo(0.5);
    // The event loop stalled for 37 ms: slots 1..37 are all due now.
    expect(scheduler.takeDue(37_000_000n)).toEqual({ from: 1, to: 38 });
    expect(scheduler.delayToNextMs(37_000_000n)).toBeCloseTo(1);
    // And the clock reading late again gives back what remains, up to the end.
    expect(scheduler.takeDue(10n * S)).toEqual({ from: 38, to: 100 });
    expect(scheduler.done).toBe(true);
    expect(scheduler.delayToNextMs(10n * S)).toBeUndefined();
  });

  it("refuses nonsense rates", () => {
    expect(() => new OpenLoopScheduler({ startNs: 0n, rate: 0, slotsTotal: 1 })).toThrow(/rate/);
    expect(() => new OpenLoopScheduler({ startNs: 0n, rate: Number.NaN, slotsTotal: 1 })).toThrow(/rate/);
  });
});
