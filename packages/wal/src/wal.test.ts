import { constants as fsConstants, promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CodedError } from "@logplayer/base";
import { LogEntry } from "@logplayer/proto";
import { encodeEntryPayload } from "./wal-record";
import { seededRandom, testEntry } from "./test-entries";
import { scanSegment, segmentFileName, WalCorruptionError } from "./wal-recovery";
import { RECORD_HEADER_BYTES } from "./wal-record";
import { DEFAULT_WAL_LIMITS, Wal, type WalDamage, type WalLimits } from "./wal";

const random = seededRandom(7);
let dir: string;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "logstore-wal-"));
});

afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function limits(overrides: Partial<WalLimits> = {}): WalLimits {
  return { ...DEFAULT_WAL_LIMITS, ...overrides };
}

function appendEntry(wal: Wal, entry: LogEntry = testEntry(wal.lastLsn + 1n, random)): Promise<void> {
  return wal.append(entry, encodeEntryPayload(entry));
}

/** Every entry from `from`, following readRange's paging. */
async function readAll(wal: Wal, from = 1n, bytesMax = 300): Promise<LogEntry[]> {
  const result: LogEntry[] = [];
  for (let next = from; ; ) {
    const batch = await wal.readRange(next, wal.lastLsn, bytesMax, 7);
    if (batch.length === 0) return result;
    result.push(...batch);
    next = batch[batch.length - 1]!.lsn + 1n;
  }
}

const json = (entries: LogEntry[]): unknown[] => entries.map((e) => LogEntry.toJSON(e));

/** The open-file flags of this process's descriptors on `file` (Linux: /proc/self/fdinfo). */
async function openFlagsOf(file: string): Promise<number[]> {
  const flags: number[] = [];
  for (const fd of await fs.readdir("/proc/self/fd")) {
    const target = await fs.readlink(`/proc/self/fd/${fd}`).catch(() => "");
    if (target !== file) continue;
    const info = await fs.readFile(`/proc/self/fdinfo/${fd}`, "utf8").catch(() => "");
    const match = /^flags:\s+([0-7]+)$/m.exec(info);
    if (match !== null) flags.push(parseInt(match[1]!, 8));
  }
  return flags;
}

describe("Wal", () => {
  // Acknowledged appends are durable only because the active segment is open with O_DSYNC
  // (there is no fdatasync after the write); a kill -9 test cannot see a missing sync.
  (process.platform === "linux" ? it : it.skip)(
    "writes the active segment through an O_DSYNC descriptor, also after a segment roll",
    async () => {
      const { wal } = await Wal.open(dir, limits({ segmentBytesMax: 4096 }));
      await appendEntry(wal);
      const first = path.join(dir, segmentFileName(1n));
      const firstFlags = await openFlagsOf(first);
      expect(firstFlags.length).toBeGreaterThan(0);
      for (const flags of firstFlags) expect(flags & fsConstants.O_DSYNC).toBe(fsConstants.O_DSYNC);
      while (wal.segmentCount < 2) await appendEntry(wal);
      const active = path.join(dir, segmentFileName(wal.lastLsn));
      const activeFlags = await openFlagsOf(active);
      expect(activeFlags.length).toBeGreaterThan(0);
      for (const flags of activeFlags) expect(flags & fsConstants.O_DSYNC).toBe(fsConstants.O_DSYNC);
      await wal.close();
    },
  );

  it("group commit: many concurrent appends share far fewer durable writes", async () => {
    const { wal } = await Wal.open(dir, limits());
    const count = 200;
    const appends = Array.from({ length: count }, () => appendEntry(wal));
    await Promise.all(appends);
    expect(wal.durableLsn).toBe(BigInt(count));
    expect(wal.stats.appends).toBe(count);
    // Appended in one synchronous run, all 200 share the first round: one durable write.
    expect(wal.stats.durableWrites).toBe(1);
    expect(wal.stats.groupCommits).toBe(wal.stats.durableWrites);
    await wal.close();
  });

  it("acknowledges in order and reports durable LSNs to listeners", async () => {
    const { wal } = await Wal.open(dir, limits());
    const seen: bigint[] = [];
    wal.onDurable((lsn) => seen.push(lsn));
    const order: bigint[] = [];
    await Promise.all([1n, 2n, 3n].map((lsn) => appendEntry(wal).then(() => order.push(lsn))));
    expect(order).toEqual([1n, 2n, 3n]);
    expect(seen[seen.length - 1]).toBe(3n);
    expect(seen).toEqual([...seen].sort((a, b) => (a < b ? -1 : 1)));
    await wal.close();
  });

  it("rolls over to new segments and reads everything back after a restart", async () => {
    const { wal } = await Wal.open(dir, limits({ segmentBytesMax: 4096, cacheBytesMax: 0 }));
    const written: LogEntry[] = [];
    for (let round = 0; round < 10; round++) {
      const batch = Array.from({ length: 20 }, (_, i) => testEntry(wal.lastLsn + 1n + BigInt(i), random, 60));
      await Promise.all(batch.map((entry) => appendEntry(wal, entry)));
      written.push(...batch);
    }
    expect(wal.segmentCount).toBeGreaterThan(3);
    const files = (await fs.readdir(dir)).sort();
    expect(files).toHaveLength(wal.segmentCount);
    expect(files[0]).toBe(segmentFileName(1n));
    for (const file of files) expect((await fs.stat(path.join(dir, file))).size).toBeLessThanOrEqual(4096);
    expect(json(await readAll(wal))).toEqual(json(written));
    await wal.close();

    const reopened = await Wal.open(dir, limits({ segmentBytesMax: 4096 }));
    expect(reopened.report).toMatchObject({ lastLsn: 200n, tornTail: null, segments: files.length });
    expect(json(await readAll(reopened.wal))).toEqual(json(written));
    expect(json(await readAll(reopened.wal, 137n))).toEqual(json(written.slice(136)));
    await appendEntry(reopened.wal);
    expect(reopened.wal.durableLsn).toBe(201n);
    await reopened.wal.close();
  });

  it("serves tailing reads from the cache and older ones from disk, with identical results", async () => {
    const { wal } = await Wal.open(dir, limits({ cacheBytesMax: 2000 }));
    await Promise.all(Array.from({ length: 100 }, () => appendEntry(wal)));
    const tail = await wal.readRange(95n, 100n, 1 << 20, 100);
    expect(tail.map((e) => e.lsn)).toEqual([95n, 96n, 97n, 98n, 99n, 100n]);
    expect(wal.stats.diskReads).toBe(0);
    const warm = await readAll(wal, 1n, 10_000);
    expect(wal.stats.diskReads).toBeGreaterThan(0);
    expect(warm.map((e) => e.lsn)).toEqual(Array.from({ length: 100 }, (_, i) => BigInt(i + 1)));
    await wal.close();
    const { wal: cold } = await Wal.open(dir, limits({ cacheBytesMax: 0 }));
    expect(json(await readAll(cold, 1n, 10_000))).toEqual(json(warm));
    await cold.close();
  });

  it("readRangeSync pages exactly like readRange, and both refuse a record that no longer verifies", async () => {
    const { wal } = await Wal.open(dir, limits({ segmentBytesMax: 4096, cacheBytesMax: 0 }));
    await Promise.all(Array.from({ length: 80 }, () => appendEntry(wal, testEntry(wal.lastLsn + 1n, random, 90))));
    for (const [from, bytesMax, entriesMax] of [
      [1n, 300, 7],
      [5n, 1 << 20, 100],
      [40n, 1, 100],
      [79n, 1 << 20, 1],
    ] as const) {
      expect(json(wal.readRangeSync(from, 80n, bytesMax, entriesMax))).toEqual(json(await wal.readRange(from, 80n, bytesMax, entriesMax)));
    }
    // Damage the last record of the first segment under the running WAL (recovery would refuse to open it).
    const lastInFirst = BigInt((await wal.readRange(1n, 80n, 1 << 20, 100)).length);
    const file = path.join(dir, segmentFileName(1n));
    const bytes = await fs.readFile(file);
    bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 0x10;
    await fs.writeFile(file, bytes);
    const refusal = new RegExp(`LSN ${lastInFirst} in ${segmentFileName(1n)} at offset \\d+ no longer verifies: checksum mismatch`);
    expect(() => wal.readRangeSync(lastInFirst, 80n, 1 << 20, 1)).toThrow(refusal);
    await expect(wal.readRange(lastInFirst, 80n, 1 << 20, 1)).rejects.toThrow(refusal);
    await wal.close();
  });

  it("honours bytesMax and entriesMax but always returns at least one entry", async () => {
    const { wal } = await Wal.open(dir, limits({ cacheBytesMax: 0 }));
    await Promise.all(Array.from({ length: 10 }, () => appendEntry(wal, testEntry(wal.lastLsn + 1n, random, 500))));
    expect(await wal.readRange(1n, 10n, 1, 100)).toHaveLength(1);
    expect(await wal.readRange(1n, 10n, 1 << 20, 4)).toHaveLength(4);
    expect(await wal.readRange(3n, 5n, 1 << 20, 100)).toHaveLength(3);
    expect(await wal.readRange(11n, 20n, 1 << 20, 100)).toHaveLength(0);
    await wal.close();
  });

  it("truncateAfter drops the suffix durably, across segments, and appends continue from there", async () => {
    const { wal } = await Wal.open(dir, limits({ segmentBytesMax: 4096 }));
    await Promise.all(Array.from({ length: 100 }, () => appendEntry(wal, testEntry(wal.lastLsn + 1n, random, 60))));
    const before = await readAll(wal);
    const segmentsBefore = wal.segmentCount;
    await wal.truncateAfter(37n);
    expect(wal.lastLsn).toBe(37n);
    expect(wal.durableLsn).toBe(37n);
    expect(wal.segmentCount).toBeLessThan(segmentsBefore);
    expect(json(await readAll(wal))).toEqual(json(before.slice(0, 37)));
    const replacement = testEntry(38n, random, 10, 2n);
    await appendEntry(wal, replacement);
    expect(wal.lastTerm).toBe(2n);
    await wal.close();

    const { wal: reopened, report } = await Wal.open(dir, limits({ segmentBytesMax: 4096 }));
    expect(report).toMatchObject({ lastLsn: 38n, lastTerm: 2n, tornTail: null });
    expect(json(await readAll(reopened))).toEqual(json([...before.slice(0, 37), replacement]));
    expect([0n, 1n, 37n, 38n, 39n].map((lsn) => reopened.termAt(lsn))).toEqual([0n, 1n, 1n, 2n, undefined]);
    await reopened.truncateAfter(0n);
    expect(reopened.lastLsn).toBe(0n);
    expect(await readAll(reopened)).toEqual([]);
    await reopened.close();
    expect(await fs.readdir(dir)).toEqual([segmentFileName(1n)]);
    expect((await fs.stat(path.join(dir, segmentFileName(1n)))).size).toBe(0);
  });

  it("refuses appends past appendQueueMax with RESOURCE_EXHAUSTED, queueing nothing", async () => {
    const { wal } = await Wal.open(dir, limits({ appendQueueMax: 5 }));
    const accepted = Array.from({ length: 5 }, () => appendEntry(wal));
    let refused: unknown;
    try {
      await appendEntry(wal);
    } catch (err: unknown) {
      refused = err;
    }
    expect(CodedError.is(refused) && refused.kind).toBe("limit-exceeded");
    expect(wal.lastLsn).toBe(5n);
    await Promise.all(accepted);
    await appendEntry(wal);
    expect(wal.durableLsn).toBe(6n);
    await wal.close();
  });

  it("cuts a torn tail on open and reports file, offset and bytes dropped", async () => {
    const { wal } = await Wal.open(dir, limits());
    await Promise.all(Array.from({ length: 5 }, () => appendEntry(wal)));
    await wal.close();
    const file = path.join(dir, segmentFileName(1n));
    const goodSize = (await fs.stat(file)).size;
    await fs.appendFile(file, Buffer.from([1, 2, 3, 4, 5, 6, 7]));
    const { wal: reopened, report } = await Wal.open(dir, limits());
    expect(report.tornTail).toMatchObject({ fileName: segmentFileName(1n), offset: goodSize, bytesDropped: 7 });
    expect((await fs.stat(file)).size).toBe(goodSize);
    expect(reopened.lastLsn).toBe(5n);
    await reopened.close();
  });

  describe("a damaged record in the middle of the log", () => {
    /** 200 entries over several segments; flips one payload bit of LSN 30, in the first segment. */
    async function writeAndDamage(): Promise<{ written: LogEntry[]; files: string[]; sizes: number[] }> {
      const { wal } = await Wal.open(dir, limits({ segmentBytesMax: 4096 }));
      const written: LogEntry[] = [];
      for (let i = 0; i < 200; i++) {
        const entry = testEntry(wal.lastLsn + 1n, random, 60);
        await appendEntry(wal, entry);
        written.push(entry);
      }
      await wal.close();
      const files = (await fs.readdir(dir)).sort();
      expect(files.length).toBeGreaterThan(3);
      const first = path.join(dir, files[0]!);
      const bytes = await fs.readFile(first);
      const offset = scanSegment({ fileName: files[0]!, bytes }, null, false).index.offsetOf(30n);
      bytes[offset + RECORD_HEADER_BYTES + 3]! ^= 0x10;
      await fs.writeFile(first, bytes);
      const sizes = await Promise.all(files.map(async (file) => (await fs.stat(path.join(dir, file))).size));
      return { written, files, sizes };
    }

    it("is refused without onDamage, and changes nothing on disk", async () => {
      const { files, sizes } = await writeAndDamage();
      await expect(Wal.open(dir, limits({ segmentBytesMax: 4096 }))).rejects.toThrow(WalCorruptionError);
      const after = await Promise.all(files.map(async (file) => (await fs.stat(path.join(dir, file))).size));
      expect(after).toEqual(sizes);
    });

    it("with onDamage: asks first, then keeps the good prefix and drops the damaged record and everything after it", async () => {
      const { written, files, sizes } = await writeAndDamage();
      const seen: WalDamage[] = [];
      const { wal, report } = await Wal.open(
        dir,
        limits({ segmentBytesMax: 4096 }),
        {},
        {
          createIfMissing: false,
          onDamage: async (damage) => {
            // Nothing is cut before the hook has made dropping safe.
            expect((await fs.readdir(dir)).sort()).toEqual(files);
            seen.push(damage);
          },
        },
      );
      expect(seen).toHaveLength(1);
      expect(report.damage).toBe(seen[0]);
      expect(report.damage).toMatchObject({ keptLastLsn: 29n, segmentsDropped: files.slice(1) });
      expect(report.damage?.error.fileName).toBe(files[0]);
      expect(report.damage?.bytesDropped).toBe(sizes[0]! - report.damage!.error.offset);
      expect(report.lastLsn).toBe(29n);
      expect(await fs.readdir(dir)).toEqual([files[0]]);
      expect(json(await readAll(wal))).toEqual(json(written.slice(0, 29)));
      await appendEntry(wal);
      expect(wal.durableLsn).toBe(30n);
      await wal.close();
      const reopened = await Wal.open(dir, limits({ segmentBytesMax: 4096 }));
      expect(reopened.report).toMatchObject({ lastLsn: 30n, tornTail: null, damage: null });
      await reopened.wal.close();
    });

    it("fails the open and changes nothing on disk when onDamage rejects", async () => {
      const { files, sizes } = await writeAndDamage();
      const refusal = new Error("no peers to repair from");
      const open = Wal.open(
        dir,
        limits({ segmentBytesMax: 4096 }),
        {},
        { createIfMissing: false, onDamage: () => Promise.reject(refusal) },
      );
      await expect(open).rejects.toBe(refusal);
      const after = await Promise.all(files.map(async (file) => (await fs.stat(path.join(dir, file))).size));
      expect(after).toEqual(sizes);
    });
  });

  it("asserts dense LSNs", async () => {
    const { wal } = await Wal.open(dir, limits());
    const entry = testEntry(2n, random);
    expect(() => wal.append(entry, encodeEntryPayload(entry))).toThrow(/LSNs must be dense/);
    await wal.close();
  });
});
