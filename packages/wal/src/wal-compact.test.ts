import type { LogEntry } from "@logplayer/proto";
import { SimDisk } from "./sim-segment-files";
import { seededRandom, testEntry } from "./test-entries";
import { DEFAULT_WAL_LIMITS, Wal, type WalLimits } from "./wal";
import { encodeEntryPayload } from "./wal-record";
import { parseSegmentFileName } from "./wal-recovery";

// compactTo (delete whole segments below an index) and resetAfter (empty the
// log after a snapshot), over simulated files, with crashes part-way.

const LIMITS: WalLimits = { ...DEFAULT_WAL_LIMITS, segmentBytesMax: 4096, cacheBytesMax: 0 };
const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sameBytes = (a: LogEntry, b: LogEntry): boolean => Buffer.compare(encodeEntryPayload(a), encodeEntryPayload(b)) === 0;

async function appendAll(wal: Wal, count: number, random: () => number, term = 1n): Promise<LogEntry[]> {
  const entries: LogEntry[] = [];
  for (let i = 0; i < count; i++) {
    const entry = testEntry(wal.lastLsn + 1n, random, 100, term);
    entries.push(entry);
    void wal.append(entry, encodeEntryPayload(entry));
  }
  await wal.flush();
  return entries;
}

/** Completes the disk's operations one at a time until `promise` settles (bounded). */
async function drive<T>(disk: SimDisk, promise: Promise<T>): Promise<T> {
  let settled = false;
  const watched = promise.finally(() => {
    settled = true;
  });
  for (let i = 0; i < 100_000 && !settled; i++) {
    disk.completeNext();
    await tick();
  }
  if (!settled) throw new Error("the operation did not finish");
  return watched;
}

/** Every entry the WAL holds, read from disk. */
function readAll(wal: Wal): LogEntry[] {
  const entries: LogEntry[] = [];
  let next = wal.firstLsn;
  while (next <= wal.lastLsn) {
    const batch = wal.readRangeSync(next, wal.lastLsn, 1 << 20, 1000);
    if (batch.length === 0) throw new Error(`unreadable from ${next}`);
    entries.push(...batch);
    next += BigInt(batch.length);
  }
  return entries;
}

function segmentFirstLsns(disk: SimDisk): bigint[] {
  return [...disk.durableFiles().keys()]
    .map((name) => parseSegmentFileName(name))
    .filter((lsn): lsn is bigint => lsn !== null)
    .sort((a, b) => (a < b ? -1 : 1));
}

describe("Wal.compactTo", () => {
  it("deletes exactly the segments whose entries are all <= the index, durably, and the first LSN survives a restart", async () => {
    const disk = new SimDisk({ random: seededRandom(1), completion: "immediate" });
    const { wal } = await Wal.openFiles(disk.mount(), LIMITS);
    const log = await appendAll(wal, 200, seededRandom(2));
    const firsts = segmentFirstLsns(disk);
    expect(firsts.length).toBeGreaterThan(4);
    // An index inside the third segment: the first two go, the third (which holds entries above it) stays.
    const index = firsts[2]! + 3n;
    const bytesBefore = wal.diskBytes;
    const result = await wal.compactTo(index);
    expect(result).toEqual({ segmentsDeleted: 2, bytesDeleted: bytesBefore - wal.diskBytes, firstLsn: firsts[2]! });
    expect(wal.firstLsn).toBe(firsts[2]!);
    expect(segmentFirstLsns(disk)).toEqual(firsts.slice(2));
    await expect(wal.readRange(firsts[2]! - 1n, wal.lastLsn, 1 << 20, 10)).rejects.toMatchObject({ kind: "out-of-range" });
    expect(wal.termAt(firsts[2]! - 1n)).toBeUndefined();
    expect(wal.termAt(firsts[2]!)).toBe(1n);
    // Compacting to the same index again, or below the first LSN, does nothing.
    expect((await wal.compactTo(index)).segmentsDeleted).toBe(0);
    expect((await wal.compactTo(0n)).segmentsDeleted).toBe(0);
    // Appends go on; the log above the first LSN is intact, before and after a crash and restart.
    log.push(...(await appendAll(wal, 5, seededRandom(3))));
    expect(readAll(wal).every((entry, i) => sameBytes(entry, log[Number(firsts[2]! - 1n) + i]!))).toBe(true);
    disk.crash();
    const { wal: reopened, report } = await Wal.openFiles(disk.mount(), LIMITS, {}, { createIfMissing: false });
    expect(report.firstLsn).toBe(firsts[2]!);
    expect(reopened.lastLsn).toBe(205n);
    expect(reopened.segmentCount).toBe(firsts.length - 2);
    expect(readAll(reopened).every((entry, i) => sameBytes(entry, log[Number(firsts[2]! - 1n) + i]!))).toBe(true);
  });

  it("never deletes the newest segment, even for an index past the end", async () => {
    const disk = new SimDisk({ random: seededRandom(4), completion: "immediate" });
    const { wal } = await Wal.openFiles(disk.mount(), LIMITS);
    await appendAll(wal, 100, seededRandom(5));
    const firsts = segmentFirstLsns(disk);
    const result = await wal.compactTo(10_000n);
    expect(result.segmentsDeleted).toBe(firsts.length - 1);
    expect(wal.firstLsn).toBe(firsts[firsts.length - 1]!);
    expect(wal.lastLsn).toBe(100n);
    expect(readAll(wal).length).toBe(Number(100n - wal.firstLsn + 1n));
  });

  it("a crash at any point of a compaction leaves a contiguous suffix of the log, intact", async () => {
    for (let seed = 1; seed <= 60; seed++) {
      const disk = new SimDisk({ random: seededRandom(seed), completion: "manual" });
      const random = seededRandom(seed + 100);
      const { wal } = await drive(disk, Wal.openFiles(disk.mount(), LIMITS));
      const log = await drive(disk, appendAll(wal, 150, random));
      const index = BigInt(1 + Math.floor(random() * 150));
      void wal.compactTo(index).catch(() => undefined);
      const steps = Math.floor(random() * 12);
      for (let i = 0; i < steps; i++) {
        disk.completeNext();
        await tick();
      }
      disk.crash();
      const { wal: reopened } = await drive(disk, Wal.openFiles(disk.mount(), LIMITS, {}, { createIfMissing: false }));
      expect({ seed, lastLsn: reopened.lastLsn }).toEqual({ seed, lastLsn: 150n });
      expect(reopened.firstLsn).toBeLessThanOrEqual(index + 1n);
      const recovered = readAll(reopened);
      expect(recovered.every((entry, i) => sameBytes(entry, log[Number(reopened.firstLsn - 1n) + i]!))).toBe(true);
    }
  });
});

describe("Wal.resetAfter", () => {
  it("empties the log so that it continues after the given LSN, durably", async () => {
    const disk = new SimDisk({ random: seededRandom(8), completion: "immediate" });
    const { wal } = await Wal.openFiles(disk.mount(), LIMITS);
    await appendAll(wal, 100, seededRandom(9));
    await wal.resetAfter(500n);
    expect([wal.firstLsn, wal.lastLsn, wal.durableLsn, wal.lastTerm, wal.segmentCount]).toEqual([501n, 500n, 500n, 0n, 1]);
    expect(wal.termAt(500n)).toBeUndefined();
    expect(segmentFirstLsns(disk)).toEqual([501n]);
    const appended = await appendAll(wal, 3, seededRandom(10), 7n);
    expect(appended[0]!.lsn).toBe(501n);
    disk.crash();
    const { wal: reopened } = await Wal.openFiles(disk.mount(), LIMITS, {}, { createIfMissing: false });
    expect([reopened.firstLsn, reopened.lastLsn, reopened.lastTerm]).toEqual([501n, 503n, 7n]);
    // Also below the current end: a follower whose log conflicts with the snapshot.
    await reopened.resetAfter(20n);
    expect([reopened.firstLsn, reopened.lastLsn]).toEqual([21n, 20n]);
  });

  it("a crash part-way leaves a prefix of the old log, or nothing, which reopens after the snapshot", async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const disk = new SimDisk({ random: seededRandom(seed), completion: "manual" });
      const random = seededRandom(seed + 200);
      const { wal } = await drive(disk, Wal.openFiles(disk.mount(), LIMITS));
      const log = await drive(disk, appendAll(wal, 80, random));
      const snapshotLsn = BigInt(1 + Math.floor(random() * 120));
      void wal.resetAfter(snapshotLsn).catch(() => undefined);
      const steps = Math.floor(random() * 20);
      for (let i = 0; i < steps; i++) {
        disk.completeNext();
        await tick();
      }
      disk.crash();
      const reopening = Wal.openFiles(disk.mount(), LIMITS, {}, { createIfMissing: true, emptyStartsAfter: snapshotLsn });
      const { wal: reopened } = await drive(disk, reopening);
      if (reopened.firstLsn === snapshotLsn + 1n) {
        expect(reopened.lastLsn).toBe(snapshotLsn);
      } else {
        expect({ seed, firstLsn: reopened.firstLsn }).toEqual({ seed, firstLsn: 1n });
        expect(readAll(reopened).every((entry, i) => sameBytes(entry, log[i]!))).toBe(true);
      }
    }
  });
});
