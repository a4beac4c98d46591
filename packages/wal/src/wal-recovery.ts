import { assert } from "@logplayer/base";
import { decodeRecord, RECORD_HEADER_BYTES, RECORD_MAGIC, type RecordProblem } from "./wal-record";
import { SegmentIndex } from "./segment-index";
import { TermRuns } from "./term-runs";

/**
 * WAL recovery, pure: segment bytes in, a verdict out. The adapter reads the
 * files and applies the verdict (truncating a torn tail on disk).
 *
 * Rules:
 * - Records must carry dense LSNs, within and across segments, and each
 *   segment's file name must name its first LSN.
 * - An INCOMPLETE record (a partial header or payload) or zero-filled bytes
 *   at the end of the LAST segment, with no valid record after it, is a torn
 *   tail: an append whose write never completed (each record is written
 *   O_DSYNC and acknowledged only after, so it was never acknowledged). It is
 *   cut off and reported.
 * - A WHOLE last record that fails its checks (checksum, magic, a header field)
 *   is not a torn write, which leaves a record incomplete or zero-filled: it
 *   may have been acknowledged and delivered, so cutting it would hand its LSN
 *   out again. Likewise a record that looks incomplete only because its length
 *   field was damaged (the checksum matches with the real length). Refused.
 * - Anything else bad is corruption of acknowledged data: a bad record in an
 *   earlier segment, a bad record followed by any valid one, or an LSN gap.
 *   Recovery refuses with a WalCorruptionError naming the file and offset.
 *   scanSegmentUntilDamage returns that error instead of throwing it, with the
 *   good records before it: a replica that can refill its log from its peers
 *   keeps that prefix and drops the rest (see Wal.open's onDamage).
 */

const SEGMENT_FILE_PATTERN = /^wal-(\d{20})\.seg$/;

export function segmentFileName(firstLsn: bigint): string {
  assert(firstLsn >= 1n, `segment first LSN must be >= 1, got ${firstLsn}`);
  return `wal-${firstLsn.toString().padStart(20, "0")}.seg`;
}

/** The first LSN a segment file name promises, or null when it is not a segment name. */
export function parseSegmentFileName(fileName: string): bigint | null {
  const match = SEGMENT_FILE_PATTERN.exec(fileName);
  if (!match) return null;
  const lsn = BigInt(match[1]!);
  return lsn >= 1n ? lsn : null;
}

export class WalCorruptionError extends Error {
  override readonly name = "WalCorruptionError";

  constructor(
    readonly fileName: string,
    readonly offset: number,
    readonly problem: string,
  ) {
    super(`WAL corrupt in ${fileName} at offset ${offset}: ${problem}; refusing to start`);
  }
}

export interface SegmentInput {
  readonly fileName: string;
  readonly bytes: Uint8Array;
}

export interface TornTail {
  readonly fileName: string;
  /** Where the segment is cut: everything from here on is dropped. */
  readonly offset: number;
  readonly bytesDropped: number;
  readonly reason: string;
}

export interface SegmentScan {
  /** The valid records before any torn tail or damage. */
  readonly index: SegmentIndex;
  /** Bytes of valid records; the file is cut to this length on a torn tail. */
  readonly validBytes: number;
  /** Term of the last record, 0 when the segment is empty. */
  readonly lastTerm: bigint;
  readonly tornTail: TornTail | null;
}

function describe(problem: RecordProblem): string {
  return problem.lsn === undefined ? problem.reason : `${problem.reason} (record for LSN ${problem.lsn})`;
}

/**
 * Scans one segment. `expectedFirstLsn` is where the previous segment ended
 * plus one (null for the oldest segment, whose name is trusted). The term of
 * each record is added to `terms` (shared across segments, so terms must not
 * go back from one segment to the next either). Throws WalCorruptionError.
 */
export function scanSegment(
  input: SegmentInput,
  expectedFirstLsn: bigint | null,
  isLast: boolean,
  terms: TermRuns = new TermRuns(),
): SegmentScan {
  const scan = scanSegmentUntilDamage(input, expectedFirstLsn, isLast, terms);
  if (scan.damage !== null) throw scan.damage;
  return scan;
}

/** A segment scan that stopped at damaged data: `index` and `validBytes` cover the good records before it. */
export interface DamagedSegmentScan extends SegmentScan {
  /** Corruption of possibly acknowledged data at `validBytes` (its offset), or null. */
  readonly damage: WalCorruptionError | null;
}

/**
 * scanSegment, but damage is returned with the good prefix rather than thrown:
 * `index`, `validBytes` and `terms` then cover the records before the damage.
 */
export function scanSegmentUntilDamage(
  input: SegmentInput,
  expectedFirstLsn: bigint | null,
  isLast: boolean,
  terms: TermRuns = new TermRuns(),
): DamagedSegmentScan {
  const { fileName, bytes } = input;
  const firstLsn = parseSegmentFileName(fileName);
  assert(firstLsn !== null, `not a segment file name: ${fileName}`);
  const index = new SegmentIndex(fileName, firstLsn);
  let offset = 0;
  let lastTerm = 0n;
  const damaged = (problem: string): DamagedSegmentScan => ({
    index,
    validBytes: offset,
    lastTerm,
    tornTail: null,
    damage: new WalCorruptionError(fileName, offset, problem),
  });
  if (expectedFirstLsn !== null && firstLsn !== expectedFirstLsn) {
    return damaged(`LSN gap: segment starts at LSN ${firstLsn}, expected ${expectedFirstLsn}`);
  }
  while (offset < bytes.length) {
    const result = decodeRecord(bytes, offset);
    if (result.kind !== "record") {
      const verdict = classifyBadRecord(input, offset, result, index.lastLsn + 1n, isLast);
      if (verdict instanceof WalCorruptionError) return damaged(verdict.problem);
      return { index, validBytes: offset, lastTerm, tornTail: verdict, damage: null };
    }
    const expectedLsn = index.lastLsn + 1n;
    if (result.entry.lsn !== expectedLsn) return damaged(`LSN gap: found LSN ${result.entry.lsn}, expected ${expectedLsn}`);
    if (result.entry.term < terms.lastTerm) return damaged(`term went back from ${terms.lastTerm} to ${result.entry.term}`);
    index.push(offset);
    terms.record(expectedLsn, result.entry.term);
    lastTerm = result.entry.term;
    offset += result.recordBytes;
  }
  assert(offset === bytes.length, `scan of ${fileName} overran: ${offset} > ${bytes.length}`);
  return { index, validBytes: offset, lastTerm, tornTail: null, damage: null };
}

/** Decides torn tail vs corruption (of possibly acknowledged data) for a bad record at `offset`. */
function classifyBadRecord(
  input: SegmentInput,
  offset: number,
  problem: RecordProblem,
  nextLsn: bigint,
  isLast: boolean,
): TornTail | WalCorruptionError {
  const { fileName, bytes } = input;
  if (!isLast) {
    return new WalCorruptionError(fileName, offset, `${describe(problem)} in a segment that is not the last`);
  }
  const later = findLaterValidRecord(bytes, offset + 1, nextLsn);
  if (later !== null) {
    return new WalCorruptionError(
      fileName,
      offset,
      `${describe(problem)}, but a valid record for LSN ${later.lsn} follows at offset ${later.offset}`,
    );
  }
  const rest = bytes.subarray(offset);
  if (problem.kind === "invalid" && !rest.every((byte) => byte === 0)) {
    return new WalCorruptionError(
      fileName,
      offset,
      `the last record is whole but ${describe(problem)}; it may have been acknowledged, so it is not cut as a torn tail ` +
        "(a torn write leaves a record incomplete or zero-filled): restore this WAL from a replica or a backup",
    );
  }
  if (problem.kind === "incomplete" && wholeWithDamagedLength(bytes, offset)) {
    return new WalCorruptionError(
      fileName,
      offset,
      `the last record is whole but its length field is damaged (${problem.reason}); restore this WAL from a replica or a backup`,
    );
  }
  return { fileName, offset, bytesDropped: bytes.length - offset, reason: describe(problem) };
}

/**
 * True when the bytes from `offset` to the end are one whole record whose
 * length field alone was damaged: the checksum, which covers the header
 * with its true length, matches once the length is taken from the file.
 */
function wholeWithDamagedLength(bytes: Uint8Array, offset: number): boolean {
  const payloadBytes = bytes.length - offset - RECORD_HEADER_BYTES;
  if (payloadBytes <= 0) return false;
  const candidate = Buffer.from(bytes.subarray(offset));
  candidate.writeUInt32LE(payloadBytes, 4);
  return decodeRecord(candidate, 0).kind === "record";
}

const MAGIC_BYTES = (() => {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(RECORD_MAGIC, 0);
  return magic;
})();

/**
 * Looks past a bad record for any fully valid record with a plausible LSN
 * (at least `nextLsn`, and no further ahead than the bytes left could hold).
 * Finding one means the bad record is not a torn tail but lost data.
 */
export function findLaterValidRecord(bytes: Uint8Array, fromOffset: number, nextLsn: bigint): { offset: number; lsn: bigint } | null {
  const haystack = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  let offset = haystack.indexOf(MAGIC_BYTES, fromOffset);
  while (offset !== -1) {
    const result = decodeRecord(bytes, offset);
    if (result.kind === "record") {
      const lsnAheadMax = nextLsn + BigInt(Math.ceil((bytes.length - fromOffset) / RECORD_HEADER_BYTES));
      if (result.entry.lsn >= nextLsn && result.entry.lsn <= lsnAheadMax) {
        return { offset, lsn: result.entry.lsn };
      }
    }
    offset = haystack.indexOf(MAGIC_BYTES, offset + 1);
  }
  return null;
}

export interface WalRecovery {
  readonly segments: SegmentScan[];
  readonly tornTail: TornTail | null;
  /** LSN of the last valid record, or (first segment's first LSN - 1) when empty. */
  readonly lastLsn: bigint;
  readonly lastTerm: bigint;
}

/**
 * Recovers a whole WAL from its segments, oldest first. Convenient for tests
 * and small logs; the adapter calls scanSegment one file at a time so that
 * only one segment is in memory.
 */
export function recoverWal(segments: readonly SegmentInput[]): WalRecovery {
  const scans: SegmentScan[] = [];
  let expected: bigint | null = null;
  const terms = new TermRuns();
  segments.forEach((segment, i) => {
    const scan = scanSegment(segment, expected, i === segments.length - 1, terms);
    expected = scan.index.lastLsn + 1n;
    scans.push(scan);
  });
  const last = scans[scans.length - 1];
  return {
    segments: scans,
    tornTail: last?.tornTail ?? null,
    lastLsn: last === undefined ? 0n : last.index.lastLsn,
    lastTerm: terms.lastTerm,
  };
}
