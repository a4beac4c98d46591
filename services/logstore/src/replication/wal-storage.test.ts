import { MutationKind, type LogEntry } from "@logplayer/proto";
import { EMPTY_HARD_STATE } from "@logplayer/raft";
import { DEFAULT_WAL_LIMITS, encodeEntryPayload, parseSegmentFileName, SimDisk, Wal, type WalLimits } from "@logplayer/wal";
import { WalStorage } from "./wal-storage";

const ENTRY_COUNT = 200;

function entry(lsn: bigint): LogEntry {
  const value = Buffer.alloc(100, Number(lsn % 256n));
  return {
    lsn,
    term: 1n,
    txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_PUT, key: `key-${lsn}`, value, delta: 0n }] },
    commitTimeNs: lsn,
    clientId: "test-client",
    clientSeq: lsn,
  };
}

/** A WAL of ENTRY_COUNT entries on simulated files, with no entry cache: every read past `recent` goes to a file. */
async function walOnSimulatedFiles(limits: Partial<WalLimits>): Promise<{ wal: Wal; disk: SimDisk }> {
  const disk = new SimDisk({ random: () => 0, completion: "immediate" });
  const { wal } = await Wal.openFiles(disk.mount(), { ...DEFAULT_WAL_LIMITS, cacheBytesMax: 0, ...limits });
  for (let lsn = 1n; lsn <= BigInt(ENTRY_COUNT); lsn++) {
    const written = entry(lsn);
    await wal.append(written, encodeEntryPayload(written));
  }
  return { wal, disk };
}

describe("WalStorage.entries", () => {
  it("reads a range behind the recent entries with one file read, not one per entry", async () => {
    const { wal, disk } = await walOnSimulatedFiles({});
    const storage = new WalStorage(wal, EMPTY_HARD_STATE, 1);
    const entries = storage.entries(1n, BigInt(ENTRY_COUNT) + 1n, 1 << 20);
    expect(entries.map((e) => e.index)).toEqual(Array.from({ length: ENTRY_COUNT }, (_, i) => BigInt(i + 1)));
    expect(disk.stats.syncReads).toBe(1);
    // A byte bound stops early. The WAL bounds its read by record bytes (a 28-byte header each) and Raft by
    // data + 24, so a second, short read may top up the last entries; never one read per entry.
    const bounded = storage.entries(1n, BigInt(ENTRY_COUNT) + 1n, 4000);
    expect(bounded.length).toBeGreaterThan(10);
    expect(bounded.length).toBeLessThan(ENTRY_COUNT);
    expect(disk.stats.syncReads - 1).toBeLessThanOrEqual(2);
    await wal.close();
  });

  it("reads once per segment a range spans, and takes entries still in `recent` from memory", async () => {
    const { wal, disk } = await walOnSimulatedFiles({ segmentBytesMax: 4096 });
    expect(wal.segmentCount).toBeGreaterThan(3);
    const storage = new WalStorage(wal, EMPTY_HARD_STATE, 50);
    for (let lsn = BigInt(ENTRY_COUNT) - 49n; lsn <= BigInt(ENTRY_COUNT); lsn++) {
      const stored = entry(lsn);
      storage.remember({ index: lsn, term: 1n, kind: "normal", data: encodeEntryPayload(stored) });
    }
    const entries = storage.entries(1n, BigInt(ENTRY_COUNT) + 1n, 1 << 20);
    expect(entries.map((e) => e.index)).toEqual(Array.from({ length: ENTRY_COUNT }, (_, i) => BigInt(i + 1)));
    // Entries 1..150 span the segments before the one holding 151; the last 50 come from `recent`.
    const segmentFirstLsns = [...disk.durableFiles().keys()].map((name) => parseSegmentFileName(name)!);
    const segmentsHolding1To150 = segmentFirstLsns.filter((firstLsn) => firstLsn <= BigInt(ENTRY_COUNT - 50)).length;
    expect(segmentsHolding1To150).toBeGreaterThan(2);
    expect(disk.stats.syncReads).toBe(segmentsHolding1To150);
    await wal.close();
  });
});
