import { RECORD_HEADER_BYTES } from "./wal-record";
import { buildSegments, seededRandom, testEntry } from "./test-entries";
import { recoverWal, segmentFileName, WalCorruptionError, type SegmentInput } from "./wal-recovery";

const random = seededRandom(42);
const ENTRY_COUNT = 30;
const entries = Array.from({ length: ENTRY_COUNT }, (_, i) => testEntry(BigInt(i + 1), random));
// Buffers, so the tests can read header fields with readUInt32LE.
const segments = buildSegments(entries, 600).map((s) => ({ fileName: s.fileName, bytes: Buffer.from(s.bytes) }));

/** The WAL as it would be on disk if the machine stopped after `cut` bytes in total were written. */
function cutAt(all: SegmentInput[], cut: number): SegmentInput[] {
  const result: SegmentInput[] = [];
  let left = cut;
  for (const segment of all) {
    if (left <= 0 && result.length > 0) break;
    result.push({ fileName: segment.fileName, bytes: segment.bytes.subarray(0, Math.max(0, Math.min(left, segment.bytes.length))) });
    left -= segment.bytes.length;
  }
  return result;
}

/** Record boundaries (cumulative byte positions where a whole number of records ends). */
function boundaries(all: { bytes: Buffer }[]): Map<number, bigint> {
  const ends = new Map<number, bigint>([[0, 0n]]);
  let total = 0;
  let lsn = 0n;
  for (const segment of all) {
    let offset = 0;
    while (offset < segment.bytes.length) {
      offset += RECORD_HEADER_BYTES + segment.bytes.readUInt32LE(offset + 4);
      lsn++;
      ends.set(total + offset, lsn);
    }
    total += segment.bytes.length;
  }
  return ends;
}

function expectCorruption(run: () => unknown, fileName: string, offset: number, reason: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (err: unknown) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(WalCorruptionError);
  const error = caught as WalCorruptionError;
  expect(error.message).toContain(`WAL corrupt in ${fileName} at offset ${offset}:`);
  expect(error.message).toMatch(reason);
  expect(error.message).toMatch(/refusing to start$/);
}

describe("WAL recovery", () => {
  it("builds a multi-segment WAL for the tests", () => {
    expect(segments.length).toBeGreaterThanOrEqual(3);
    const recovery = recoverWal(segments);
    expect(recovery.lastLsn).toBe(BigInt(ENTRY_COUNT));
    expect(recovery.tornTail).toBeNull();
    expect(recovery.segments.map((s) => s.index.firstLsn)).toEqual(segments.map((s) => BigInt(s.fileName.slice(4, 24))));
  });

  it("recovers a prefix, and reports the tear, after a cut at every byte", () => {
    const ends = boundaries(segments);
    const total = segments.reduce((sum, s) => sum + s.bytes.length, 0);
    let lastWhole = 0n;
    for (let cut = 0; cut <= total; cut++) {
      if (ends.has(cut)) lastWhole = ends.get(cut)!;
      const recovery = recoverWal(cutAt(segments, cut));
      expect(recovery.lastLsn).toBe(lastWhole);
      if (ends.has(cut)) {
        expect(recovery.tornTail).toBeNull();
      } else {
        expect(recovery.tornTail).not.toBeNull();
        expect(recovery.tornTail!.bytesDropped).toBeGreaterThan(0);
        const last = recovery.segments[recovery.segments.length - 1]!;
        expect(recovery.tornTail!.offset).toBe(last.validBytes);
        expect(recovery.tornTail!.fileName).toBe(last.index.fileName);
      }
    }
  });

  it("refuses a flipped byte in a middle record followed by valid records, naming file and offset", () => {
    const last = segments[segments.length - 1]!;
    const recordOffset = RECORD_HEADER_BYTES + last.bytes.readUInt32LE(4); // the second record
    const recordEnd = recordOffset + RECORD_HEADER_BYTES + last.bytes.readUInt32LE(recordOffset + 4);
    for (let i = recordOffset; i < recordEnd; i++) {
      const damaged = Buffer.from(last.bytes);
      damaged[i] = damaged[i]! ^ 0x40;
      const wal = [...segments.slice(0, -1), { fileName: last.fileName, bytes: damaged }];
      expectCorruption(() => recoverWal(wal), last.fileName, recordOffset, /follows at offset/);
    }
  });

  it("refuses a flipped bit anywhere in the LAST record (whole, nothing after it): never cut as a torn tail", () => {
    const last = segments[segments.length - 1]!;
    let lastRecordOffset = 0;
    for (let offset = 0; offset < last.bytes.length; offset += RECORD_HEADER_BYTES + last.bytes.readUInt32LE(offset + 4)) {
      lastRecordOffset = offset;
    }
    for (let i = lastRecordOffset; i < last.bytes.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const damaged = Buffer.from(last.bytes);
        damaged[i] = damaged[i]! ^ bit;
        const wal = [...segments.slice(0, -1), { fileName: last.fileName, bytes: damaged }];
        expectCorruption(() => recoverWal(wal), last.fileName, lastRecordOffset, /the last record is whole but/);
      }
    }
  });

  it("refuses a bad record anywhere in a segment that is not the last", () => {
    const first = segments[0]!;
    const damaged = Buffer.from(first.bytes);
    const lastRecordOffset = (() => {
      let offset = 0;
      let previous = 0;
      while (offset < damaged.length) {
        previous = offset;
        offset += RECORD_HEADER_BYTES + damaged.readUInt32LE(offset + 4);
      }
      return previous;
    })();
    damaged[damaged.length - 1] = damaged[damaged.length - 1]! ^ 0xff;
    const wal = [{ fileName: first.fileName, bytes: damaged }, ...segments.slice(1)];
    expectCorruption(
      () => recoverWal(wal),
      first.fileName,
      lastRecordOffset,
      /checksum mismatch \(record for LSN \d+\) in a segment that is not the last/,
    );
  });

  it("treats a zero-filled tail as torn", () => {
    const last = segments[segments.length - 1]!;
    const wal = [...segments.slice(0, -1), { fileName: last.fileName, bytes: Buffer.concat([last.bytes, Buffer.alloc(4096)]) }];
    const recovery = recoverWal(wal);
    expect(recovery.lastLsn).toBe(BigInt(ENTRY_COUNT));
    expect(recovery.tornTail).toMatchObject({ fileName: last.fileName, offset: last.bytes.length, bytesDropped: 4096 });
    expect(recovery.tornTail!.reason).toMatch(/bad magic/);
  });

  it("refuses an LSN gap inside a segment", () => {
    const withGap = buildSegments([...entries.slice(0, 5), ...entries.slice(6, 10)], 1 << 20);
    const offset = buildSegments(entries.slice(0, 5), 1 << 20)[0]!.bytes.length;
    expectCorruption(() => recoverWal(withGap), segmentFileName(1n), offset, /LSN gap: found LSN 7, expected 6/);
  });

  it("refuses an LSN gap across segments (a missing segment)", () => {
    const missing = [segments[0]!, ...segments.slice(2)];
    expectCorruption(() => recoverWal(missing), segments[2]!.fileName, 0, /LSN gap: segment starts at LSN \d+, expected \d+/);
  });

  it("refuses a segment whose name does not match its first record", () => {
    const renamed = [{ fileName: segmentFileName(2n), bytes: segments[0]!.bytes }];
    expectCorruption(() => recoverWal(renamed), segmentFileName(2n), 0, /LSN gap: found LSN 1, expected 2/);
  });

  it("refuses a term that goes back, even across segments", () => {
    const rising = [testEntry(1n, random, 10, 2n), testEntry(2n, random, 10, 2n), testEntry(3n, random, 10, 1n)];
    const wal = buildSegments(rising, 100);
    expect(wal.length).toBeGreaterThan(1);
    const last = wal[wal.length - 1]!;
    expectCorruption(() => recoverWal(wal), last.fileName, 0, /term went back from 2 to 1/);
    expect(recoverWal(buildSegments(rising.slice(0, 2), 100)).lastTerm).toBe(2n);
  });

  it("accepts an empty WAL and an empty last segment", () => {
    expect(recoverWal([]).lastLsn).toBe(0n);
    const recovery = recoverWal([...segments, { fileName: segmentFileName(BigInt(ENTRY_COUNT + 1)), bytes: Buffer.alloc(0) }]);
    expect(recovery.lastLsn).toBe(BigInt(ENTRY_COUNT));
    expect(recovery.tornTail).toBeNull();
  });
});
