import { seededRandom } from "@logplayer/common";
import { FaultSchedule, RAFT_LINK_TARGET, type FaultDecision, type FaultTargets } from "./fault-schedule";

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

const raftTargets: FaultTargets = {
  processes: [
    { name: "logstore-1", service: "logstore" },
    { name: "logstore-2", service: "logstore" },
    { name: "logstore-3", service: "logstore" },
    { name: "shard-0", service: "shard" },
    { name: "logplayer-0", service: "logplayer" },
  ],
  links: ["logplayer-0→logstore-1", "logplayer-0→shard-0", "client→logstore-1"],
  raftLinks: [
    "logstore-1→logstore-2",
    "logstore-2→logstore-1",
    "logstore-1→logstore-3",
    "logstore-3→logstore-1",
    "logstore-2→logstore-3",
    "logstore-3→logstore-2",
  ],
};

function draw(seed: number, count: number, busy: ReadonlySet<string> = new Set()): FaultDecision[] {
  const schedule = new FaultSchedule(seededRandom(seed), targets);
  return Array.from({ length: count }, () => schedule.next(busy)!);
}

test("the first faults kill every kind of process, pause a LogPlayer, cut a link and stall one", () => {
  for (const seed of [1, 2, 3, 42]) {
    const first = draw(seed, 6)
      .map((d) => `${d.kind} ${d.targetKind}`)
      .sort();
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
  const schedule = new FaultSchedule(seededRandom(5), raftTargets, {
    gapMsMin: 10,
    gapMsMax: 20,
    durationMsMin: 100,
    durationMsMax: 200,
    stallMsMin: 300,
    stallMsMax: 400,
    partitionMsMin: 500,
    partitionMsMax: 600,
    faultsActiveMax: 1,
  });
  for (let i = 0; i < 100; i++) {
    const d = schedule.next(new Set())!;
    const [min, max] = d.kind === "stall" ? [300, 400] : d.kind === "partition" ? [500, 600] : [100, 200];
    expect(d.durationMs).toBeGreaterThanOrEqual(min);
    expect(d.durationMs).toBeLessThanOrEqual(max);
    const gap = schedule.nextGapMs();
    expect(gap).toBeGreaterThanOrEqual(10);
    expect(gap).toBeLessThanOrEqual(20);
  }
});

/** `count` draws; with busy targets a draw may find nothing (undefined), which is left out. */
function drawRaft(seed: number, count: number, busy: ReadonlySet<string> = new Set()): FaultDecision[] {
  const schedule = new FaultSchedule(seededRandom(seed), raftTargets);
  return Array.from({ length: count }, () => schedule.next(busy)).filter((d): d is FaultDecision => d !== undefined);
}

test("with Raft links the first faults also cut and stall a Raft link and partition a replica", () => {
  for (const seed of [1, 2, 3, 42]) {
    const first = drawRaft(seed, 9)
      .map((d) => `${d.kind} ${d.targetKind}`)
      .sort();
    expect(first).toEqual([
      "cut link",
      "cut raft-link",
      "kill logplayer",
      "kill logstore",
      "kill shard",
      "partition logstore",
      "pause logplayer",
      "stall link",
      "stall raft-link",
    ]);
  }
});

test("Raft link faults name Raft links, other link faults never do; a partition holds every Raft link", () => {
  const raftLinks = new Set(raftTargets.raftLinks);
  const decisions = drawRaft(11, 300);
  for (const d of decisions) {
    if (d.kind === "cut" || d.kind === "stall") expect(raftLinks.has(d.target)).toBe(d.targetKind === RAFT_LINK_TARGET);
    if (d.kind === "partition") {
      expect(d.target).toMatch(/^logstore-/);
      expect([...d.occupies].sort()).toEqual([...raftLinks].sort());
    } else {
      expect(d.occupies).toEqual([d.target]);
    }
  }
  // Every kind comes up again after the first round, in both link categories.
  const kinds = new Set(decisions.slice(9).map((d) => `${d.kind} ${d.targetKind}`));
  for (const kind of ["cut link", "stall link", "cut raft-link", "stall raft-link", "partition logstore"])
    expect(kinds.has(kind)).toBe(true);
});

test("no partition while any Raft link is busy, and no Raft faults without Raft links", () => {
  const busy = new Set(["logstore-2→logstore-3"]);
  for (const d of drawRaft(5, 200, busy)) {
    expect(d.kind).not.toBe("partition");
    expect(busy.has(d.target)).toBe(false);
  }
  for (const d of draw(5, 200)) {
    expect(d.kind).not.toBe("partition");
    expect(d.targetKind).not.toBe(RAFT_LINK_TARGET);
  }
});
