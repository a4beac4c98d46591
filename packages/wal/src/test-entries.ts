import { MutationKind, type LogEntry } from "@logplayer/proto";
import { encodeEntryPayload, encodeRecord } from "./wal-record";
import { segmentFileName, type SegmentInput } from "./wal-recovery";

export { seededRandom } from "@logplayer/base";

/** A log entry with a key and a value of `valueBytes` pseudo-random bytes. */
export function testEntry(lsn: bigint, random: () => number, valueBytes = 8 + Math.floor(random() * 40), term = 1n): LogEntry {
  const value = Buffer.alloc(valueBytes);
  for (let i = 0; i < valueBytes; i++) value[i] = Math.floor(random() * 256);
  return {
    lsn,
    term,
    txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_PUT, key: `key-${lsn}`, value, delta: 0n }] },
    commitTimeNs: 1000n + lsn,
    clientId: "test-client",
    clientSeq: lsn,
  };
}

export function recordFor(entry: LogEntry): Buffer {
  return encodeRecord(entry, encodeEntryPayload(entry));
}

/** Frames entries 1..count into segments of at most `segmentBytesMax` bytes (like the WAL does). */
export function buildSegments(entries: LogEntry[], segmentBytesMax: number): SegmentInput[] {
  const segments: { fileName: string; records: Buffer[]; bytes: number }[] = [];
  for (const entry of entries) {
    const record = recordFor(entry);
    const current = segments[segments.length - 1];
    if (current === undefined || (current.records.length > 0 && current.bytes + record.length > segmentBytesMax)) {
      segments.push({ fileName: segmentFileName(entry.lsn), records: [record], bytes: record.length });
    } else {
      current.records.push(record);
      current.bytes += record.length;
    }
  }
  return segments.map((s) => ({ fileName: s.fileName, bytes: Buffer.concat(s.records) }));
}
