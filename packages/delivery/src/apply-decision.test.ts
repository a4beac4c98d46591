import { AssertionError, seededRandom } from "@logplayer/base";
import { decideApply, planBatch, type PartPosition } from "./apply-decision";

const part = (lsn: number, prevLsn: number): PartPosition => ({ lsn: BigInt(lsn), prevLsn: BigInt(prevLsn) });

describe("decideApply", () => {
  test.each([
    // [appliedLsn, lsn, prevLsn, decision]
    [0, 1, 0, "apply"], // first part of an empty shard
    [5, 7, 5, "apply"], // prevLsn == appliedLsn: follows on exactly
    [5, 7, 3, "apply"], // prevLsn < appliedLsn < lsn: permissive case (another player's dummy at 5)
    [5, 6, 0, "apply"], // nothing for this shard before 6, and 5 was a dummy
    [5, 5, 3, "duplicate"], // lsn == appliedLsn
    [5, 4, 2, "duplicate"], // lsn < appliedLsn
    [5, 9, 6, "gap"], // part 6 (or something in (5, 6]) is missing
    [0, 2, 1, "gap"], // never saw part 1
  ] as const)("applied %i, part (%i, prev %i) -> %s", (applied, lsn, prevLsn, expected) => {
    expect(decideApply(BigInt(applied), part(lsn, prevLsn))).toBe(expected);
  });

  test("a part whose lsn is not above its prev lsn is a programmer error", () => {
    expect(() => decideApply(0n, part(3, 3))).toThrow(AssertionError);
    expect(() => decideApply(0n, part(2, 3))).toThrow(AssertionError);
  });
});

describe("planBatch", () => {
  test("applies a batch that follows on, in order", () => {
    const plan = planBatch(0n, [part(1, 0), part(3, 1), part(4, 3)]);
    expect(plan.apply.map((p) => p.lsn)).toEqual([1n, 3n, 4n]);
    expect(plan.appliedLsnAfter).toBe(4n);
    expect(plan.duplicates).toBe(0);
    expect(plan.gap).toBeUndefined();
  });

  test("skips duplicates, applies the rest, stops at the first gap", () => {
    const plan = planBatch(5n, [part(3, 1), part(4, 3), part(6, 4), part(8, 7), part(9, 8)]);
    expect(plan.duplicates).toBe(2);
    expect(plan.apply.map((p) => p.lsn)).toEqual([6n]);
    expect(plan.appliedLsnAfter).toBe(6n);
    expect(plan.gap).toEqual({ lsn: 8n, prevLsn: 7n });
  });

  test("a gap at the first part applies nothing", () => {
    const plan = planBatch(2n, [part(5, 4), part(6, 5)]);
    expect(plan.apply).toEqual([]);
    expect(plan.appliedLsnAfter).toBe(2n);
    expect(plan.gap).toEqual({ lsn: 5n, prevLsn: 4n });
  });

  test("an all-duplicate batch leaves the applied LSN alone", () => {
    const plan = planBatch(9n, [part(2, 0), part(9, 2)]);
    expect(plan).toEqual({ apply: [], appliedLsnAfter: 9n, duplicates: 2 });
  });

  test("parts out of order are a programmer error", () => {
    expect(() => planBatch(0n, [part(3, 0), part(2, 0)])).toThrow(AssertionError);
  });
});

interface ModelPart extends PartPosition {
  readonly real: boolean;
}

/** One LogPlayer's view of the log for the shard: real parts plus its own dummies. */
function playerParts(touches: boolean[], dummyChance: number, random: () => number): ModelPart[] {
  const parts: ModelPart[] = [];
  let prevLsn = 0n;
  touches.forEach((touched, index) => {
    if (!touched && random() >= dummyChance) return;
    const lsn = BigInt(index + 1);
    parts.push({ lsn, prevLsn, real: touched });
    prevLsn = lsn;
  });
  return parts;
}

interface ShardModel {
  appliedLsn: bigint;
  appliedReal: bigint[];
}

function deliver(shard: ShardModel, batch: readonly ModelPart[]): ReturnType<typeof planBatch<ModelPart>> {
  const plan = planBatch(shard.appliedLsn, batch);
  for (const applied of plan.apply) {
    expect(applied.lsn).toBeGreaterThan(shard.appliedLsn);
    if (applied.real) shard.appliedReal.push(applied.lsn);
    shard.appliedLsn = applied.lsn;
  }
  expect(shard.appliedLsn).toBe(plan.appliedLsnAfter);
  return plan;
}

const resumeIndex = (parts: readonly ModelPart[], appliedLsn: bigint): number => {
  const index = parts.findIndex((p) => p.lsn > appliedLsn);
  return index === -1 ? parts.length : index;
};

/**
 * Two correct LogPlayers (different dummy placement) deliver to one shard in
 * random interleavings, with stale resends, jumps ahead (a zombie or a bug),
 * restarts from the handshake and rewinds after gaps. Whatever the schedule,
 * the shard must apply exactly the log filtered to it, once each, in order.
 */
function runSchedule(seed: number): void {
  const random = seededRandom(seed);
  const entries = 10 + Math.floor(random() * 60);
  const touches = Array.from({ length: entries }, () => random() < 0.4);
  const players = [playerParts(touches, random(), random), playerParts(touches, random(), random)];
  const cursors = [0, 0];
  const shard: ShardModel = { appliedLsn: 0n, appliedReal: [] };
  // Random length, so that many schedules end mid-log and the drain below
  // (one player resuming after the other's dummies) has work to do.
  const steps = Math.floor(random() * 300);
  for (let step = 0; step < steps; step++) {
    const who = random() < 0.5 ? 0 : 1;
    const parts = players[who]!;
    const action = random();
    if (action < 0.1) {
      cursors[who] = resumeIndex(parts, shard.appliedLsn); // restart: handshake tells appliedLsn
    } else if (action < 0.2) {
      cursors[who] = Math.floor(random() * (parts.length + 1)); // stale or skipped-ahead position
    } else {
      const start = cursors[who]!;
      const batch = parts.slice(start, start + 1 + Math.floor(random() * 5));
      if (batch.length === 0) continue;
      const plan = deliver(shard, batch);
      cursors[who] = plan.gap ? resumeIndex(parts, plan.appliedLsnAfter) : start + batch.length;
    }
  }
  // Drain: one player catches the shard up from its handshake position, in
  // one go (no gap allowed, even when the shard last applied the other
  // player's dummy).
  const drainer = players[0]!;
  const drain = deliver(shard, drainer.slice(resumeIndex(drainer, shard.appliedLsn)));
  expect(drain.gap).toBeUndefined();
  const expected = touches.flatMap((touched, index) => (touched ? [BigInt(index + 1)] : []));
  expect(shard.appliedReal).toEqual(expected);
}

describe("shard model with two LogPlayers", () => {
  test("applies the log filtered to the shard exactly once, in order, for 300 seeded schedules", () => {
    for (let seed = 1; seed <= 300; seed++) {
      try {
        runSchedule(seed);
      } catch (err: unknown) {
        throw new Error(`seed ${seed}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  });
});
