import { crc32 } from "node:zlib";
import { assert } from "@logplayer/base";
import { decodeLogEntry, encodeLogEntry, type LogEntry } from "@logplayer/proto";

/**
 * WAL record framing. Pure: bytes in, bytes or a verdict out.
 *
 * A record is a fixed 28-byte little-endian header followed by the payload,
 * the protobuf encoding of one LogEntry:
 *
 *   offset  size  field
 *        0     4  magic          RECORD_MAGIC ("LPW1")
 *        4     4  payloadBytes   length of the payload that follows
 *        8     8  lsn            must equal the payload's lsn
 *       16     8  term           must equal the payload's term
 *       24     4  crc32          over header bytes [0, 24) then the payload
 *
 * The checksum covers the header fields too, so a flipped bit in the length
 * or the LSN is caught, not only one in the payload.
 */
export const RECORD_MAGIC = 0x3157_504c; // "LPW1" read as little-endian u32
export const RECORD_HEADER_BYTES = 28;
const CHECKSUMMED_HEADER_BYTES = 24;
/** Larger than any entry the service accepts; a header claiming more is garbage. */
export const RECORD_PAYLOAD_BYTES_MAX = 64 * 1024 * 1024;

export interface RecordHeader {
  readonly payloadBytes: number;
  readonly lsn: bigint;
  readonly term: bigint;
  readonly checksum: number;
}

/** Why bytes at an offset are not a valid record. */
export type RecordProblem =
  | { readonly kind: "incomplete"; readonly reason: string; readonly lsn?: bigint }
  | { readonly kind: "invalid"; readonly reason: string; readonly lsn?: bigint };

export type HeaderResult = { readonly kind: "header"; readonly header: RecordHeader } | RecordProblem;

export type RecordResult = { readonly kind: "record"; readonly entry: LogEntry; readonly recordBytes: number } | RecordProblem;

/** Encodes an entry's payload, the bytes the transaction size limit is checked against. */
export function encodeEntryPayload(entry: LogEntry): Uint8Array {
  return encodeLogEntry(entry);
}

/**
 * The header framing one entry. `payload` must be `encodeEntryPayload(entry)`;
 * it is passed in so the caller that already encoded it (to check limits) does
 * not pay twice, and it is written after the header as it is (the WAL hands
 * both to one writev, so the payload is never copied).
 */
export function encodeRecordHeader(entry: LogEntry, payload: Uint8Array): Buffer {
  assert(entry.lsn >= 1n, `record LSN must be >= 1, got ${entry.lsn}`);
  assert(entry.term >= 1n, `record term must be >= 1, got ${entry.term}`);
  assert(payload.length > 0, "record payload is empty");
  assert(payload.length <= RECORD_PAYLOAD_BYTES_MAX, `record payload of ${payload.length} bytes is too large`);
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  header.writeUInt32LE(RECORD_MAGIC, 0);
  header.writeUInt32LE(payload.length, 4);
  header.writeBigUInt64LE(entry.lsn, 8);
  header.writeBigUInt64LE(entry.term, 16);
  header.writeUInt32LE(recordChecksum(header, 0, payload), 24);
  // Pair assertion: what we are about to write must read back as the same entry.
  const check = decodeRecordHeader(header, 0);
  assert(check.kind === "header" && check.header.lsn === entry.lsn, `record for LSN ${entry.lsn} does not read back`);
  return header;
}

/** Header and payload as one buffer (tests, the simulator). */
export function encodeRecord(entry: LogEntry, payload: Uint8Array): Buffer {
  return Buffer.concat([encodeRecordHeader(entry, payload), payload]);
}

function recordChecksum(bytes: Uint8Array, offset: number, payload: Uint8Array): number {
  const header = bytes.subarray(offset, offset + CHECKSUMMED_HEADER_BYTES);
  return crc32(payload, crc32(header));
}

/** Reads and sanity-checks the header at `offset`, without the checksum (that needs the payload). */
export function decodeRecordHeader(bytes: Uint8Array, offset: number): HeaderResult {
  assert(offset >= 0 && offset <= bytes.length, `header offset ${offset} outside [0, ${bytes.length}]`);
  if (bytes.length - offset < RECORD_HEADER_BYTES) {
    return { kind: "incomplete", reason: `partial header (${bytes.length - offset} of ${RECORD_HEADER_BYTES} bytes)` };
  }
  const view = Buffer.from(bytes.buffer, bytes.byteOffset + offset, RECORD_HEADER_BYTES);
  const magic = view.readUInt32LE(0);
  if (magic !== RECORD_MAGIC) {
    return { kind: "invalid", reason: `bad magic 0x${magic.toString(16).padStart(8, "0")}` };
  }
  const payloadBytes = view.readUInt32LE(4);
  const lsn = view.readBigUInt64LE(8);
  const term = view.readBigUInt64LE(16);
  if (payloadBytes === 0 || payloadBytes > RECORD_PAYLOAD_BYTES_MAX) {
    return { kind: "invalid", reason: `implausible payload length ${payloadBytes}`, lsn };
  }
  if (lsn === 0n || term === 0n) return { kind: "invalid", reason: `zero LSN or term`, lsn };
  return { kind: "header", header: { payloadBytes, lsn, term, checksum: view.readUInt32LE(24) } };
}

/**
 * Decodes and verifies the record at `offset`: header sanity, checksum, and
 * that the payload is a LogEntry whose lsn and term match the header.
 */
export function decodeRecord(bytes: Uint8Array, offset: number): RecordResult {
  const headerResult = decodeRecordHeader(bytes, offset);
  if (headerResult.kind !== "header") return headerResult;
  const { header } = headerResult;
  const payloadStart = offset + RECORD_HEADER_BYTES;
  const payloadEnd = payloadStart + header.payloadBytes;
  if (payloadEnd > bytes.length) {
    const have = bytes.length - payloadStart;
    return { kind: "incomplete", reason: `partial payload (${have} of ${header.payloadBytes} bytes)`, lsn: header.lsn };
  }
  const payload = bytes.subarray(payloadStart, payloadEnd);
  if (recordChecksum(bytes, offset, payload) !== header.checksum) {
    return { kind: "invalid", reason: "checksum mismatch", lsn: header.lsn };
  }
  let entry: LogEntry;
  try {
    entry = decodeLogEntry(payload);
  } catch (err: unknown) {
    // A checksummed payload that does not decode is a writer bug, not a torn write.
    return { kind: "invalid", reason: `payload does not decode: ${String(err)}`, lsn: header.lsn };
  }
  if (entry.lsn !== header.lsn || entry.term !== header.term) {
    return { kind: "invalid", reason: `payload LSN ${entry.lsn}/term ${entry.term} disagrees with header`, lsn: header.lsn };
  }
  return { kind: "record", entry, recordBytes: RECORD_HEADER_BYTES + header.payloadBytes };
}
