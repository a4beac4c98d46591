import type { LogEntry } from "@logplayer/proto";
import { ShardBackups, SimWalTrimming, type LifecycleConfig } from "./delivery-lifecycle";

function committedLog(count: number): LogEntry[] {
  return Array.from({ length: count }, (_, i) => ({
    lsn: BigInt(i + 1),
    term: 1n,
    txn: { mutations: [] },
    commitTimeNs: 0n,
    clientId: "sim",
    clientSeq: BigInt(i + 1),
  }));
}

const CONFIG: LifecycleConfig = {
  segmentEntries: 4,
  retention: { retainBytes: 0, retainAgeMs: 0 },
  reportIntervalMs: 20,
  reportDelayMsMax: 1,
  eventGapMsMax: 30,
  backupsOn: [true],
};

describe("SimWalTrimming (the simulated LogStore's trimming, on the production rule)", () => {
  it("deletes the whole segments at or below the trim point, never the one holding the entry after it", () => {
    const trimming = new SimWalTrimming(CONFIG, 1);
    trimming.report({ trimPoint: 10n, shardCount: 1 }, committedLog(20), 20n, 0);
    expect(trimming.trimPoint).toBe(10n);
    expect(trimming.firstLsn).toBe(9n);
    trimming.report({ trimPoint: 12n, shardCount: 1 }, committedLog(20), 20n, 0);
    expect(trimming.firstLsn).toBe(13n);
  });

  it("refuses a point above the commit LSN and never moves back", () => {
    const trimming = new SimWalTrimming(CONFIG, 1);
    trimming.report({ trimPoint: 30n, shardCount: 1 }, committedLog(20), 20n, 0);
    expect(trimming.firstLsn).toBe(1n);
    expect(trimming.stats.refused).toBe(1);
    trimming.report({ trimPoint: 8n, shardCount: 1 }, committedLog(20), 20n, 0);
    trimming.report({ trimPoint: 4n, shardCount: 1 }, committedLog(20), 20n, 0);
    expect(trimming.trimPoint).toBe(8n);
    expect(trimming.firstLsn).toBe(9n);
  });

  it("never deletes the segment being written", () => {
    const trimming = new SimWalTrimming(CONFIG, 1);
    trimming.report({ trimPoint: 8n, shardCount: 1 }, committedLog(8), 8n, 0);
    expect(trimming.firstLsn).toBe(5n);
  });

  it("with the trim-one-past fault, deletes the segment holding the entry after the point", () => {
    const trimming = new SimWalTrimming({ ...CONFIG, fault: "trim-one-past" }, 1);
    trimming.report({ trimPoint: 10n, shardCount: 1 }, committedLog(20), 20n, 0);
    expect(trimming.firstLsn).toBe(13n);
  });
});

describe("ShardBackups", () => {
  const backup = (appliedLsn: bigint) => ({ appliedLsn, kv: new Map(), appliedParts: [] });

  it("holds the restorable LSN at the newest backup, and at 0 before the first", () => {
    const backups = new ShardBackups(true);
    expect(backups.restorableLsn(50n)).toBe(0n);
    backups.add(backup(30n));
    expect(backups.restorableLsn(50n)).toBe(30n);
    expect(backups.restorableLsn(20n)).toBe(20n);
  });

  it("is the durable LSN with backups off", () => {
    const backups = new ShardBackups(false);
    backups.add(backup(30n));
    expect(backups.newest).toBeUndefined();
    expect(backups.restorableLsn(50n)).toBe(50n);
  });
});
