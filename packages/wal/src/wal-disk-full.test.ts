import type { LogEntry } from "@logplayer/proto";
import { waitFor } from "@logplayer/testing";
import { SimDisk } from "./sim-segment-files";
import { recordFor, seededRandom, testEntry } from "./test-entries";
import { DEFAULT_WAL_LIMITS, Wal, type WalLimits, type WalTimers } from "./wal";
import { encodeEntryPayload } from "./wal-record";

// A full disk is an operating condition, not a fatal error: the WAL keeps
// what it was given, acknowledges nothing it has not written whole, leaves
// no partial record behind, and resumes by itself once there is room.

const LIMITS: WalLimits = { ...DEFAULT_WAL_LIMITS, segmentBytesMax: 4096, cacheBytesMax: 1024, appendQueueMax: 256 };

interface Harness {
  readonly disk: SimDisk;
  wal: Wal;
  readonly diskFullEvents: (string | null)[];
  readonly sleeps: number[];
  /** Called on every retry wait; returns nothing, may free space. */
  onSleep: (attempt: number) => void;
}

async function openHarness(seed: number): Promise<Harness> {
  const disk = new SimDisk({ random: seededRandom(seed), completion: "immediate" });
  const harness = { disk, diskFullEvents: [], sleeps: [], onSleep: () => {} } as unknown as Harness;
  const timers: WalTimers = {
    // No real waiting, but a turn of the event loop, so the test's own waits get to run between retries.
    sleep: async (ms) => {
      harness.sleeps.push(ms);
      await new Promise((resolve) => setImmediate(resolve));
      harness.onSleep(harness.sleeps.length);
    },
  };
  const { wal } = await Wal.openFiles(
    disk.mount(),
    LIMITS,
    { onDiskFull: (message) => harness.diskFullEvents.push(message) },
    {
      createIfMissing: true,
      timers,
    },
  );
  harness.wal = wal;
  return harness;
}

function entries(from: number, count: number, random: () => number): LogEntry[] {
  return Array.from({ length: count }, (_, i) => testEntry(BigInt(from + i), random, 60));
}

function append(wal: Wal, list: readonly LogEntry[]): Promise<void>[] {
  return list.map((entry) => wal.append(entry, encodeEntryPayload(entry)));
}

async function reopenAfterCrash(disk: SimDisk): Promise<{ wal: Wal; tornTail: unknown }> {
  disk.crash();
  const { wal, report } = await Wal.openFiles(disk.mount(), LIMITS, {}, { createIfMissing: false });
  return { wal, tornTail: report.tornTail };
}

async function readAll(wal: Wal): Promise<LogEntry[]> {
  const read: LogEntry[] = [];
  while (BigInt(read.length) < wal.lastLsn) read.push(...(await wal.readRange(BigInt(read.length + 1), wal.lastLsn, 1 << 20, 1000)));
  return read;
}

describe("Wal on a full disk", () => {
  it("keeps the appends queued while the disk is full, acknowledges none of them, and writes them all once space is freed", async () => {
    const random = seededRandom(7);
    const h = await openHarness(1);
    const before = entries(1, 5, random);
    await Promise.all(append(h.wal, before));
    h.disk.setCapacity(h.disk.usedBytes + 100); // less than one batch of the next appends
    let settled = 0;
    const during = entries(6, 10, random);
    const pending = append(h.wal, during).map((p) => p.then(() => settled++));
    await waitFor("the WAL reports the disk full", () => h.wal.diskFull !== null, { timeoutMs: 5_000, intervalMs: 1 });
    expect(h.wal.diskFull).toMatch(/^disk full: no space left for the WAL in sim-wal/);
    expect(settled).toBe(0);
    expect(h.wal.durableLsn).toBe(5n);
    // The torn part of the failed write was cut: the disk holds exactly the five durable records.
    const fileBytes = [...h.disk.durableFiles().values()].reduce((sum, bytes) => sum + bytes.length, 0);
    expect(fileBytes).toBe(before.reduce((sum, entry) => sum + recordFor(entry).length, 0));

    h.onSleep = (attempt) => {
      if (attempt >= 3) h.disk.setCapacity(null);
    };
    await Promise.all(pending);
    expect(settled).toBe(10);
    expect(h.wal.durableLsn).toBe(15n);
    expect(h.wal.diskFull).toBeNull();
    expect(h.diskFullEvents[0]).toMatch(/^disk full/);
    expect(h.diskFullEvents.at(-1)).toBeNull();
    expect(h.wal.stats.diskFullRetries).toBeGreaterThanOrEqual(3);
    // Backoff doubles from the first delay.
    expect(h.sleeps.slice(0, 3)).toEqual([50, 100, 200]);

    const { wal, tornTail } = await reopenAfterCrash(h.disk);
    expect(tornTail).toBeNull();
    expect((await readAll(wal)).map((e) => encodeEntryPayload(e))).toEqual([...before, ...during].map((e) => encodeEntryPayload(e)));
  });

  it("a crash while the disk is full keeps every acknowledged entry and leaves no corrupt record", async () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = seededRandom(seed);
      const h = await openHarness(seed);
      const first = entries(1, 3 + Math.floor(random() * 20), random);
      await Promise.all(append(h.wal, first));
      h.disk.setCapacity(h.disk.usedBytes + Math.floor(random() * 600));
      const rest = entries(first.length + 1, 5 + Math.floor(random() * 20), random);
      const acknowledged: bigint[] = [];
      for (const [i, promise] of append(h.wal, rest).entries())
        void promise.then(
          () => acknowledged.push(rest[i]!.lsn),
          () => {},
        );
      await waitFor(`seed ${seed}: the disk fills`, () => h.wal.diskFull !== null, { timeoutMs: 5_000, intervalMs: 1 });
      const { wal, tornTail } = await reopenAfterCrash(h.disk);
      const recovered = await readAll(wal);
      const mustHave = first.length + acknowledged.length;
      expect({ seed, tornTail }).toEqual({ seed, tornTail: null });
      expect(recovered.length).toBeGreaterThanOrEqual(mustHave);
      const written = [...first, ...rest];
      for (const [i, entry] of recovered.entries())
        expect(Buffer.compare(encodeEntryPayload(entry), encodeEntryPayload(written[i]!))).toBe(0);
    }
  });

  it("close() while the disk is full returns, and refuses what was never written with UNAVAILABLE", async () => {
    const random = seededRandom(3);
    const h = await openHarness(3);
    await Promise.all(append(h.wal, entries(1, 2, random)));
    h.disk.setCapacity(h.disk.usedBytes);
    const stuck = append(h.wal, entries(3, 4, random)).map((p) =>
      p.then(
        () => "written",
        (err: Error) => err.message,
      ),
    );
    await waitFor("the disk fills", () => h.wal.diskFull !== null, { timeoutMs: 5_000, intervalMs: 1 });
    await h.wal.close();
    const outcomes = await Promise.all(stuck);
    expect(outcomes.every((o) => /disk full.*closed before it could be written/.test(o))).toBe(true);
    expect(h.wal.durableLsn).toBe(2n);
  });

  it("a segment roll on a full disk keeps the old segment active and loses nothing", async () => {
    const random = seededRandom(11);
    const h = await openHarness(11);
    // Fill the first segment close to its 4096-byte limit, then make room for nothing more.
    await Promise.all(append(h.wal, entries(1, 20, random)));
    expect(h.wal.segmentCount).toBe(1);
    const segmentsBefore = h.wal.segmentCount;
    h.disk.setCapacity(h.disk.usedBytes);
    const pending = append(h.wal, entries(21, 20, random));
    await waitFor("the disk fills", () => h.wal.diskFull !== null, { timeoutMs: 5_000, intervalMs: 1 });
    h.onSleep = () => h.disk.setCapacity(null);
    await Promise.all(pending);
    expect(h.wal.durableLsn).toBe(40n);
    expect(h.wal.segmentCount).toBeGreaterThan(segmentsBefore);
    const { wal, tornTail } = await reopenAfterCrash(h.disk);
    expect(tornTail).toBeNull();
    expect(wal.lastLsn).toBe(40n);
  });
});
