import {
  judgeTrimReport,
  NO_RAFT_FLOOR,
  NO_RETENTION,
  raftTrimFloor,
  restorableLsn,
  trimBound,
  trimThroughLsn,
  type SegmentSummary,
} from "./trim-rule";

/** Segments of `size` entries each from LSN 1, the last one active up to `lastLsn`; written at `writtenMs[i]` (default 0). */
function segments(size: number, lastLsn: number, bytes = 100, writtenMs: readonly number[] = []): SegmentSummary[] {
  const list: SegmentSummary[] = [];
  for (let first = 1, i = 0; first <= lastLsn; first += size, i++) {
    const last = Math.min(first + size - 1, lastLsn);
    list.push({ firstLsn: BigInt(first), lastLsn: BigInt(last), bytes, lastWriteMs: writtenMs[i] ?? 0 });
  }
  return list;
}

describe("judgeTrimReport", () => {
  it("raises the point to a report at or below the commit LSN", () => {
    expect(judgeTrimReport({ trimPoint: 50n, shardCount: 2 }, 10n, 60n, 2)).toEqual({ kind: "raise", trimPoint: 50n });
    expect(judgeTrimReport({ trimPoint: 60n, shardCount: 2 }, 10n, 60n, 2)).toEqual({ kind: "raise", trimPoint: 60n });
  });

  it("refuses a report above the commit LSN", () => {
    expect(judgeTrimReport({ trimPoint: 61n, shardCount: 2 }, 10n, 60n, 2).kind).toBe("refused");
  });

  it("refuses a report over another shard count", () => {
    expect(judgeTrimReport({ trimPoint: 5n, shardCount: 1 }, 0n, 60n, 2).kind).toBe("refused");
  });

  it("never moves the point back", () => {
    expect(judgeTrimReport({ trimPoint: 9n, shardCount: 2 }, 10n, 60n, 2)).toEqual({ kind: "unchanged" });
    expect(judgeTrimReport({ trimPoint: 10n, shardCount: 2 }, 10n, 60n, 2)).toEqual({ kind: "unchanged" });
  });
});

describe("trimThroughLsn", () => {
  // Segments [1,10] [11,20] [21,30] [31,40] [41,45 active].
  const log = segments(10, 45);

  it("deletes whole segments whose every entry is at or below the trim point", () => {
    expect(trimThroughLsn(log, 20n, 45n, NO_RETENTION, 0)).toBe(20n);
    expect(trimThroughLsn(log, 29n, 45n, NO_RETENTION, 0)).toBe(20n);
    expect(trimThroughLsn(log, 30n, 45n, NO_RETENTION, 0)).toBe(30n);
  });

  it("keeps the segment holding the trim point's successor: a shard restored to the point needs it", () => {
    for (let trimPoint = 0n; trimPoint <= 45n; trimPoint++) {
      const through = trimThroughLsn(log, trimPoint, 45n, NO_RETENTION, 0);
      expect(through).toBeLessThanOrEqual(trimPoint);
      // Every LSN above the point is kept: the answer is a segment boundary at or below it.
      expect(through === 0n || log.some((segment) => segment.lastLsn === through)).toBe(true);
    }
  });

  it("deletes nothing while a shard pins the point at 0", () => {
    expect(trimThroughLsn(log, 0n, 45n, NO_RETENTION, 0)).toBe(0n);
  });

  it("never passes the commit LSN, nor deletes the active segment", () => {
    expect(trimThroughLsn(log, 40n, 25n, NO_RETENTION, 0)).toBe(20n);
    expect(trimThroughLsn(log, 45n, 45n, NO_RETENTION, 0)).toBe(40n);
    expect(trimThroughLsn(segments(10, 8), 8n, 8n, NO_RETENTION, 0)).toBe(0n);
  });

  it("keeps at least retain_bytes of WAL", () => {
    // 5 segments of 100 bytes: keeping 250 bytes leaves the newest 3 (300 bytes).
    expect(trimThroughLsn(log, 40n, 45n, { retainBytes: 250, retainAgeMs: 0 }, 0)).toBe(20n);
    expect(trimThroughLsn(log, 40n, 45n, { retainBytes: 300, retainAgeMs: 0 }, 0)).toBe(20n);
    expect(trimThroughLsn(log, 40n, 45n, { retainBytes: 301, retainAgeMs: 0 }, 0)).toBe(10n);
  });

  it("keeps every segment younger than retain_age", () => {
    const aged = segments(10, 45, 100, [1_000, 2_000, 3_000, 4_000, 5_000]);
    expect(trimThroughLsn(aged, 40n, 45n, { retainBytes: 0, retainAgeMs: 2_500 }, 5_000)).toBe(20n);
    expect(trimThroughLsn(aged, 40n, 45n, { retainBytes: 0, retainAgeMs: 0 }, 5_000)).toBe(40n);
  });

  it("never lets retention trim more than the trim point allows", () => {
    expect(trimThroughLsn(log, 15n, 45n, { retainBytes: 0, retainAgeMs: 0 }, 1e12)).toBe(10n);
  });
});

describe("raftTrimFloor", () => {
  const replicas = (...matches: number[]) => matches.map((match) => ({ matchLsn: BigInt(match) }));

  it("does not bound a single voter", () => {
    expect(raftTrimFloor({ role: "leader", replicas: [] }, true, 100)).toBe(NO_RAFT_FLOOR);
  });

  it("on a leader, keeps the entries of every replica within the catch-up window of the highest match", () => {
    expect(raftTrimFloor({ role: "leader", replicas: replicas(90, 40, 70) }, false, 100)).toBe(40n);
    expect(raftTrimFloor({ role: "leader", replicas: replicas(90, 40, 70) }, false, 50)).toBe(40n);
    expect(raftTrimFloor({ role: "leader", replicas: replicas(90, 40, 70) }, false, 49)).toBe(70n);
  });

  it("does not keep entries for a replica further behind, or of unknown progress: it gets a snapshot", () => {
    expect(raftTrimFloor({ role: "leader", replicas: replicas(20_000, 3, 19_990) }, false, 100)).toBe(19_990n);
    expect(raftTrimFloor({ role: "leader", replicas: replicas(90, 0, 85) }, false, 100)).toBe(85n);
  });

  it("does not bound a follower: should it lead, it sends snapshots too", () => {
    expect(raftTrimFloor({ role: "follower", replicas: replicas(90, 90, 90) }, false, 100)).toBe(NO_RAFT_FLOOR);
  });
});

describe("restorableLsn", () => {
  it("is the durable LSN when backups are off", () => {
    expect(restorableLsn(40n, undefined)).toBe(40n);
    expect(restorableLsn(0n, undefined)).toBe(0n);
  });

  it("is the newest backup's LSN when backups are on and the live file is durable further", () => {
    expect(restorableLsn(90n, 60n)).toBe(60n);
  });

  it("never passes the durable LSN, even with a newer backup", () => {
    expect(restorableLsn(50n, 70n)).toBe(50n);
  });

  it("pins at 0 for a shard with backups on and none taken yet", () => {
    expect(restorableLsn(90n, 0n)).toBe(0n);
  });
});

describe("trimBound", () => {
  it("is the lower of the trim point and the Raft floor", () => {
    expect(trimBound(50n, NO_RAFT_FLOOR)).toBe(50n);
    expect(trimBound(50n, 20n)).toBe(20n);
  });
});
