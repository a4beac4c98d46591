import { type ClientWritableStream, Metadata, type ServiceError } from "@grpc/grpc-js";
import { invalidArgument, LpError, resourceExhausted, Status } from "@logplayer/common";
import type { InstallSnapshotResponse, ReplicationClient, SnapshotChunk } from "@logplayer/proto";
import type { SnapshotMeta } from "@logplayer/raft";
import { decodeSnapshotFile, type LogStoreSnapshot } from "../snapshot-file";
import type { RaftIdentity } from "./raft-state-file";

/** Bounds of an InstallSnapshot transfer (both ends). */
export interface SnapshotTransferLimits {
  /** Bytes of snapshot data per chunk (the sender cuts at it; the receiver refuses a bigger chunk). */
  readonly chunkBytesMax: number;
  /** The whole snapshot file at most: a bigger one is refused before any byte is kept. */
  readonly snapshotBytesMax: number;
  /** One transfer's deadline. */
  readonly transferTimeoutMs: number;
}

export const DEFAULT_SNAPSHOT_TRANSFER_LIMITS: SnapshotTransferLimits = {
  chunkBytesMax: 1024 * 1024,
  snapshotBytesMax: 1024 * 1024 * 1024,
  transferTimeoutMs: 5 * 60 * 1000,
};

/** A snapshot received whole and checked: ready to step into the core and install. */
export interface ReceivedSnapshot {
  readonly from: number;
  readonly term: bigint;
  readonly meta: SnapshotMeta;
  readonly bytes: Buffer;
  readonly state: LogStoreSnapshot;
}

/**
 * Assembles the chunks of one InstallSnapshot stream, checking each before
 * keeping its bytes: the cluster and its mode are ours, the stream is for
 * this replica from another replica (the certificate's, with mTLS; whether
 * the sender leads this replica's membership is the Raft core's check, when
 * the snapshot is stepped: a replica far behind may not know its leader yet), every
 * chunk repeats the first one's header, chunks are contiguous, none is bigger
 * than chunkBytesMax, and the total is announced up front and within
 * snapshotBytesMax. Pure: the service feeds it what the network gave.
 * Errors are LpErrors with the status to answer (INVALID_ARGUMENT,
 * FAILED_PRECONDITION, RESOURCE_EXHAUSTED, PERMISSION_DENIED).
 */
export class SnapshotAssembler {
  #first: SnapshotChunk | undefined;
  readonly #parts: Buffer[] = [];
  #received = 0n;

  constructor(
    private readonly identity: RaftIdentity,
    private readonly limits: SnapshotTransferLimits,
    /** The certificate's replica id with mTLS; null when insecure. */
    private readonly senderName: string | null,
  ) {}

  add(chunk: SnapshotChunk): void {
    const first = this.#first ?? this.#checkFirst(chunk);
    this.#first = first;
    const header = (c: SnapshotChunk): string =>
      [c.clusterId, c.peersHash, c.from, c.to, c.term, c.snapshotIndex, c.snapshotTerm, c.totalBytes].join("/");
    if (header(chunk) !== header(first)) throw invalidArgument("InstallSnapshot: a chunk's header differs from the first chunk's");
    if (chunk.offset !== this.#received)
      throw invalidArgument(`InstallSnapshot: chunk at offset ${chunk.offset}, expected ${this.#received}`);
    if (chunk.data.length > this.limits.chunkBytesMax) {
      throw resourceExhausted(
        `InstallSnapshot: a chunk of ${chunk.data.length} bytes is over chunk_bytes_max ${this.limits.chunkBytesMax}`,
      );
    }
    if (this.#received + BigInt(chunk.data.length) > first.totalBytes)
      throw invalidArgument("InstallSnapshot: more bytes than total_bytes");
    this.#parts.push(Buffer.from(chunk.data));
    this.#received += BigInt(chunk.data.length);
  }

  /** The stream ended: the snapshot, whole and decoded, matching its header. */
  finish(): ReceivedSnapshot {
    const first = this.#first;
    if (first === undefined) throw invalidArgument("InstallSnapshot: an empty stream");
    if (this.#received !== first.totalBytes) {
      throw invalidArgument(`InstallSnapshot: the stream ended at ${this.#received} of ${first.totalBytes} bytes`);
    }
    const bytes = Buffer.concat(this.#parts);
    let state: LogStoreSnapshot;
    try {
      state = decodeSnapshotFile(bytes, `the snapshot from replica ${first.from}`);
    } catch (err: unknown) {
      throw invalidArgument(err instanceof Error ? err.message : String(err));
    }
    if (state.index !== first.snapshotIndex || state.term !== first.snapshotTerm || state.clusterId !== this.identity.clusterId) {
      throw invalidArgument("InstallSnapshot: the snapshot's contents do not match its header");
    }
    return {
      from: first.from,
      term: first.term,
      meta: { index: state.index, term: state.term, voters: state.voters, learners: state.learners },
      bytes,
      state,
    };
  }

  #checkFirst(chunk: SnapshotChunk): SnapshotChunk {
    const { identity } = this;
    if (chunk.clusterId !== identity.clusterId || chunk.peersHash !== identity.peersHash) {
      throw new LpError(Status.FAILED_PRECONDITION, `InstallSnapshot: cluster mismatch (cluster "${chunk.clusterId.slice(0, 256)}")`);
    }
    if (this.senderName !== null && String(chunk.from) !== this.senderName) {
      throw new LpError(
        Status.PERMISSION_DENIED,
        `InstallSnapshot: the certificate of replica ${this.senderName} cannot send as ${chunk.from}`,
      );
    }
    if (chunk.to !== identity.replicaId || chunk.from === identity.replicaId || chunk.from < 1) {
      throw invalidArgument(`InstallSnapshot: from ${chunk.from} to ${chunk.to} is not a stream this replica takes`);
    }
    if (chunk.term < 1n || chunk.snapshotIndex < 1n || chunk.snapshotTerm < 1n || chunk.snapshotTerm > chunk.term) {
      throw invalidArgument(`InstallSnapshot: snapshot ${chunk.snapshotTerm}/${chunk.snapshotIndex} impossible in term ${chunk.term}`);
    }
    if (chunk.totalBytes < 1n || chunk.totalBytes > BigInt(this.limits.snapshotBytesMax)) {
      throw resourceExhausted(`InstallSnapshot: ${chunk.totalBytes} bytes is over snapshot_bytes_max ${this.limits.snapshotBytesMax}`);
    }
    return chunk;
  }
}

/** What a leader sends with its snapshot. */
export interface SnapshotSend {
  readonly identity: RaftIdentity;
  readonly to: number;
  readonly term: bigint;
  readonly meta: SnapshotMeta;
  readonly bytes: Buffer;
}

/** Streams `bytes` to a follower in chunks of at most chunkBytesMax, with backpressure; resolves with its answer. */
export function sendSnapshot(
  client: ReplicationClient,
  send: SnapshotSend,
  limits: SnapshotTransferLimits,
): Promise<InstallSnapshotResponse> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + limits.transferTimeoutMs;
    const call: ClientWritableStream<SnapshotChunk> = client.installSnapshot(
      new Metadata(),
      { deadline },
      (err: ServiceError | null, response?: InstallSnapshotResponse) => {
        if (err !== null || response === undefined) reject(err ?? new Error("InstallSnapshot: no answer"));
        else resolve(response);
      },
    );
    const header = {
      clusterId: send.identity.clusterId,
      peersHash: send.identity.peersHash,
      from: send.identity.replicaId,
      to: send.to,
      term: send.term,
      snapshotIndex: send.meta.index,
      snapshotTerm: send.meta.term,
      totalBytes: BigInt(send.bytes.length),
    };
    let offset = 0;
    const writeMore = (): void => {
      while (offset < send.bytes.length) {
        const data = send.bytes.subarray(offset, offset + limits.chunkBytesMax);
        const more = call.write({ ...header, offset: BigInt(offset), data });
        offset += data.length;
        if (!more) {
          call.once("drain", writeMore);
          return;
        }
      }
      call.end();
    };
    writeMore();
  });
}
