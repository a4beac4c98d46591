import { crc32 } from "node:zlib";
import { promises as fs } from "node:fs";
import path from "node:path";
import { invalidInput, LpError, Status } from "@logplayer/common";
import { LogStoreSnapshotState } from "@logplayer/proto";
import { syncDirectory } from "@logplayer/wal";
import type { DedupeTableSnapshot } from "./dedupe-table";

/** A replica's id and gRPC address, as the snapshot records it. */
export interface MemberAddress {
  readonly id: number;
  readonly address: string;
}

/**
 * snapshot.bin in the data directory: the LogStore's replicated state as of
 * one log index, the newest one this replica holds. Taken by compactLogTo
 * (at the applied index) before the WAL drops the segments below it, or
 * received from the leader (InstallSnapshot). On start the replica loads it
 * and replays only the log above it.
 *
 * Format (little-endian):
 *   offset  bytes  field
 *        0      4  magic "LPSN"
 *        4      4  format version (1)
 *        8      8  payload length
 *       16      4  crc32 over bytes [0, 16) then the payload
 *       20      n  payload: LogStoreSnapshotState (proto/logplayer/v1/replication.proto)
 * The same bytes travel in an InstallSnapshot stream, so a follower checks
 * exactly what the leader wrote.
 */
export const SNAPSHOT_FILE = "snapshot.bin";
const dataLoss = (message: string): LpError => new LpError(Status.DATA_LOSS, message);
const MAGIC = Buffer.from("LPSN", "latin1");
export const SNAPSHOT_FORMAT_VERSION = 1;
const HEADER_BYTES = 20;

/** What a snapshot holds. */
export interface LogStoreSnapshot {
  /** The last log index the state includes, and its term. */
  readonly index: bigint;
  readonly term: bigint;
  /** The Raft voters and learners as of index. */
  readonly voters: readonly number[];
  readonly learners: readonly number[];
  /** Where each member (voter or learner) is reached, as of index (see replication/address-book.ts). */
  readonly addresses: readonly MemberAddress[];
  readonly clusterId: string;
  /** The trim point (trimming policy); 0n until one is set. */
  readonly trimLsn: bigint;
  /** The dedupe table as of index (its positionLsn is index). */
  readonly dedupe: DedupeTableSnapshot;
}

export function encodeSnapshotFile(snapshot: LogStoreSnapshot): Buffer {
  const payload = LogStoreSnapshotState.encode({
    index: snapshot.index,
    term: snapshot.term,
    voters: [...snapshot.voters],
    learners: [...snapshot.learners],
    memberAddresses: snapshot.addresses.map((member) => ({ replicaId: member.id, address: member.address })),
    clusterId: snapshot.clusterId,
    trimLsn: snapshot.trimLsn,
    dedupePositionLsn: snapshot.dedupe.positionLsn,
    sessions: snapshot.dedupe.sessions.map((session) => ({
      clientId: session.clientId,
      sessionLsn: session.sessionLsn,
      lastUsedLsn: session.lastUsedLsn,
      evictedSeqMax: session.evictedSeqMax,
      seqs: session.seqs.map(([seq]) => seq),
      lsns: session.seqs.map(([, lsn]) => lsn),
    })),
  }).finish();
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32LE(SNAPSHOT_FORMAT_VERSION, 4);
  header.writeBigUInt64LE(BigInt(payload.length), 8);
  header.writeUInt32LE(crc32(payload, crc32(header.subarray(0, 16))), 16);
  return Buffer.concat([header, payload]);
}

/** The snapshot in `bytes`; throws DATA_LOSS naming `source` when they are not one whole, intact snapshot of this format. */
export function decodeSnapshotFile(bytes: Uint8Array, source: string): LogStoreSnapshot {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < HEADER_BYTES || !buffer.subarray(0, 4).equals(MAGIC)) throw dataLoss(`${source} is not a LogStore snapshot`);
  const version = buffer.readUInt32LE(4);
  if (version !== SNAPSHOT_FORMAT_VERSION)
    throw dataLoss(`${source} has snapshot format ${version}; this LogStore reads ${SNAPSHOT_FORMAT_VERSION}`);
  const length = buffer.readBigUInt64LE(8);
  if (length !== BigInt(buffer.length - HEADER_BYTES))
    throw dataLoss(`${source} is cut or padded: payload ${buffer.length - HEADER_BYTES} bytes, header says ${length}`);
  const payload = buffer.subarray(HEADER_BYTES);
  if (crc32(payload, crc32(buffer.subarray(0, 16))) !== buffer.readUInt32LE(16)) throw dataLoss(`${source} fails its checksum`);
  let state: LogStoreSnapshotState;
  try {
    state = LogStoreSnapshotState.decode(payload);
  } catch (err: unknown) {
    throw dataLoss(`${source} does not decode: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (state.index < 1n || state.term < 1n || state.dedupePositionLsn !== state.index || state.voters.length === 0) {
    throw invalidInput(`${source} holds an impossible snapshot (index ${state.index}, term ${state.term})`);
  }
  const sessions = state.sessions.map((session) => {
    if (session.seqs.length !== session.lsns.length) throw invalidInput(`${source}: client "${session.clientId}" has unpaired seqs`);
    return {
      clientId: session.clientId,
      sessionLsn: session.sessionLsn,
      lastUsedLsn: session.lastUsedLsn,
      evictedSeqMax: session.evictedSeqMax,
      seqs: session.seqs.map((seq, i) => [seq, session.lsns[i]!] as const),
    };
  });
  const members = new Set([...state.voters, ...state.learners]);
  if (members.size !== state.voters.length + state.learners.length || state.memberAddresses.some((m) => !members.has(m.replicaId))) {
    throw invalidInput(`${source} holds an impossible membership (voters ${state.voters}, learners ${state.learners})`);
  }
  return {
    index: state.index,
    term: state.term,
    voters: state.voters,
    learners: state.learners,
    addresses: state.memberAddresses.map((m) => ({ id: m.replicaId, address: m.address })),
    clusterId: state.clusterId,
    trimLsn: state.trimLsn,
    dedupe: { positionLsn: state.dedupePositionLsn, sessions },
  };
}

/** Writes snapshot.bin crash-safely: temp file, fsync, rename over the old one, fsync of the directory. */
export async function writeSnapshotFile(dataDir: string, bytes: Uint8Array): Promise<void> {
  const filePath = path.join(dataDir, SNAPSHOT_FILE);
  const tempPath = `${filePath}.tmp`;
  const handle = await fs.open(tempPath, "w");
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tempPath, filePath);
  await syncDirectory(dataDir);
}

/** snapshot.bin's bytes and what they hold, or null when this replica has none. */
export async function readSnapshotFile(dataDir: string): Promise<{ snapshot: LogStoreSnapshot; bytes: Buffer } | null> {
  const filePath = path.join(dataDir, SNAPSHOT_FILE);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(filePath);
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  return { snapshot: decodeSnapshotFile(bytes, filePath), bytes };
}
