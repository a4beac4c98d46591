import { seededRandom } from "@logplayer/common";
import { FaultSchedule, type FaultDecision, type FaultTargets } from "./fault-schedule";

const targets: FaultTargets = {
  processes: [
    { name: "logstore", service: "logstore" },
    { name: "shard-0", service: "shard" },
    { name: "shard-1", service: "shard" },
    { name: "logplayer-0", service: "logplayer" },
    { name: "logplayer-1", service: "logplayer" },
  ],
  links: ["logplayer-0→shard-0", "client→logstore"],
};

function draw(seed: number, count: number, busy: ReadonlySet<string> = new Set()): FaultDecision[] {
  const schedule = new FaultSchedule(seededRandom(seed), targets);
  return Array.from({ length: count }, () => schedule.next(busy)!);
}

test("the first faults kill every kind of process, pause a LogPlayer, cut a link and stall one", () => {
  for (const seed of [1, 2, 3, 42]) {
    const first = draw(seed, 6).map((d) => `${d.kind} ${d.targetKind}`).sort();
    expect(first).toEqual(["cut link", "kill logplayer", "kill logstore", "kill shard", "pause logplayer", "stall link"]);
  }
});

test("a seed names one fault sequence", () => {
  expect(draw(7, 40)).toEqual(draw(7, 40));
  expect(draw(7, 40)).not.toEqual(draw(8, 40));
});

test("busy targets are skipped, and nothing is drawn when all are busy", () => {
  const busy = new Set(["logstore", "shard-0", "logplayer-0"]);
  for (const decision of draw(3, 50, busy)) expect(busy.has(decision.target)).toBe(false);
  const everything = new Set([...targets.processes.map((p) => p.name), ...targets.links]);
  expect(new FaultSchedule(seededRandom(1), targets).next(everything)).toBeUndefined();
});

test("durations stay within the configured range", () => {
  const schedule = new FaultSchedule(seededRandom(5), targets, {
    gapMsMin: 10, gapMsMax: 20, durationMsMin: 100, durationMsMax: 200, stallMsMin: 300, stallMsMax: 400, faultsActiveMax: 1,
  });
  for (let i = 0; i < 100; i++) {
    const d = schedule.next(new Set())!;
    const [min, max] = d.kind === "stall" ? [300, 400] : [100, 200];
    expect(d.durationMs).toBeGreaterThanOrEqual(min);
    expect(d.durationMs).toBeLessThanOrEqual(max);
    const gap = schedule.nextGapMs();
    expect(gap).toBeGreaterThanOrEqual(10);
    expect(gap).toBeLessThanOrEqual(20);
  }
});
