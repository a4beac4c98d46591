import { fitSlope, judgeTrend } from "./soak-trend";

const BOUND = { relativePctPerHour: 20, absolutePerHour: 1000, riseAllowed: 0 };
const series = (values: readonly number[], stepS = 60) => values.map((value, i) => ({ tS: i * stepS, value }));

describe("fitSlope", () => {
  it("fits a line exactly", () => {
    expect(fitSlope(series([10, 20, 30, 40], 10))).toBeCloseTo(1);
  });
  it("needs two distinct times", () => {
    expect(fitSlope(series([5]))).toBeNull();
    expect(
      fitSlope([
        { tS: 3, value: 1 },
        { tS: 3, value: 2 },
      ]),
    ).toBeNull();
  });
});

describe("judgeTrend", () => {
  it("passes a sawtooth that is trimmed back (a bounded WAL: segments fill and go several times between samples)", () => {
    const sawtooth = Array.from({ length: 60 }, (_, i) => 100_000 + (i % 3) * 20_000);
    expect(judgeTrend(series(sawtooth), BOUND).grows).toBe(false);
  });

  it("fails a series that keeps growing (nothing trimmed)", () => {
    const growing = Array.from({ length: 60 }, (_, i) => 100_000 + i * 20_000);
    const verdict = judgeTrend(series(growing), BOUND);
    expect(verdict.grows).toBe(true);
    expect(verdict.slopePerHour).toBeCloseTo(20_000 * 60);
  });

  it("judges only the last half: growth at start-up that then levels off passes", () => {
    const warming = Array.from({ length: 60 }, (_, i) => (i < 30 ? i * 50_000 : 1_500_000));
    expect(judgeTrend(series(warming), BOUND).grows).toBe(false);
  });

  it("allows the absolute floor for small series", () => {
    expect(judgeTrend(series([10, 11, 12, 13]), BOUND).grows).toBe(false);
  });

  it("allows a rise up to a declared budget (a cache that fills), and fails growth that goes past it", () => {
    const filling = Array.from({ length: 10 }, (_, i) => 100_000 + i * 2_000);
    expect(judgeTrend(series(filling), { ...BOUND, riseAllowed: 20_000 }).grows).toBe(false);
    const leaking = Array.from({ length: 10 }, (_, i) => 100_000 + i * 3_000);
    const verdict = judgeTrend(series(leaking), { ...BOUND, riseAllowed: 20_000 });
    expect(verdict.rise).toBe(27_000);
    expect(verdict.grows).toBe(true);
  });

  it("cannot judge with fewer than two samples in the last half", () => {
    expect(judgeTrend(series([1]), BOUND).slopePerHour).toBeNull();
  });
});
