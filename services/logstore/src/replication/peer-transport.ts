import type { ChannelCredentials, ClientWritableStream, ServiceError } from "@grpc/grpc-js";
import { grpcChannelOptions, Status } from "@logplayer/common";
import { ReplicationClient, type StepRequest } from "@logplayer/proto";
import type { InstallSnapshotResponse } from "@logplayer/proto";
import type { Message, NodeId, SnapshotMessage } from "@logplayer/raft";
import { sendSnapshot, type SnapshotSend, type SnapshotTransferLimits } from "./snapshot-transfer";
import type { Peer } from "./peers";
import type { RaftIdentity } from "./raft-state-file";
import type { RaftTransport } from "./raft-driver";
import { messageToWire, type StepMessage } from "./wire";

export interface PeerTransportOptions {
  readonly identity: RaftIdentity;
  readonly peers: readonly Peer[];
  readonly messageBytesMax: number;
  /** Messages waiting for one peer's stream; beyond it new ones are dropped (Raft resends). */
  readonly peerQueueMessagesMax: number;
  /**
   * Bytes of Raft messages to one peer queued or written to its stream and not
   * yet handed to the network; beyond it new ones are dropped (Raft resends).
   * The core's in-flight window bounds appends in flight far below it when the peer keeps up.
   */
  readonly peerStreamBytesMax: number;
  /** A stream with bytes waiting that made no progress for this long is cancelled and reopened (a stuck peer). */
  readonly peerRpcTimeoutMs: number;
  /** mTLS with this replica's certificate, or insecure. */
  readonly channelCredentials: ChannelCredentials;
  /** Logs a refusal by a peer (rate-limited by the caller). */
  readonly onRefused: (text: string) => void;
  /** A snapshot message from the core: it travels by InstallSnapshot (sendSnapshot), not on the stream. */
  readonly onSnapshot: (message: SnapshotMessage) => void;
  /** Timers, replaceable in tests. */
  readonly timers?: LinkTimers;
}

/** The timers a link uses (reconnect backoff, stall check). */
export interface LinkTimers {
  readonly setTimeout: (run: () => void, ms: number) => unknown;
  readonly clearTimeout: (handle: unknown) => void;
  readonly now: () => number;
}

const NODE_TIMERS: LinkTimers = {
  setTimeout: (run, ms) => setTimeout(run, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

/** The first wait before reopening a broken stream, and the longest (doubling in between). */
export const STREAM_REOPEN_MS_FIRST = 20;
export const STREAM_REOPEN_MS_LAST = 1_000;
/** A stream that lived this long before breaking was healthy: the next reopen waits the first delay again. */
const STREAM_HEALTHY_MS = 2_000;

/**
 * One peer's outbound link: ONE long-lived client stream (Replication.StepStream)
 * carrying every Raft message to the peer but snapshots. A stream keeps the
 * order (a reordered AppendEntries would make the leader fall back to probing)
 * and lets several appends be in flight at once: the core's in-flight window
 * bounds them, and the link's byte bound (peerStreamBytesMax) what waits here.
 * Messages are written as soon as the stream takes them; what queues while it
 * pushes back goes out as one batch. A broken stream loses what was on it,
 * like a lossy network (Raft resends), and is reopened after a backoff.
 */
interface PeerLink {
  readonly peer: Peer;
  readonly client: ReplicationClient;
  /** The open stream, or undefined (not opened yet, or broken and waiting to reopen). */
  stream: ClientWritableStream<StepRequest> | undefined;
  /** When the current stream was opened (timers.now()). */
  openedAtMs: number;
  /** The stream said to wait for "drain" before the next write. */
  waitingForDrain: boolean;
  queue: StepMessage[];
  queuedBytes: number;
  /** Bytes written to the stream whose write has not completed yet. */
  writingBytes: number;
  /** Last time a write completed or the queue was empty (stall check). */
  progressAtMs: number;
  reopenTimer: unknown;
  reopenDelayMs: number;
  stallTimer: unknown;
  closed: boolean;
}

/** Raft messages to the other replicas over gRPC Replication.StepStream: the driver's transport port. */
export class PeerTransport implements RaftTransport {
  readonly #options: PeerTransportOptions;
  readonly #timers: LinkTimers;
  readonly #links = new Map<NodeId, PeerLink>();
  #closed = false;

  constructor(options: PeerTransportOptions) {
    this.#options = options;
    this.#timers = options.timers ?? NODE_TIMERS;
    for (const peer of options.peers) this.addPeer(peer);
  }

  /**
   * Opens a link to `peer` (a member added by a config entry), or moves it to
   * a new address. Nothing for this replica itself or an unknown ("") address.
   */
  addPeer(peer: Peer): void {
    if (this.#closed || peer.id === this.#options.identity.replicaId || peer.address === "") return;
    const existing = this.#links.get(peer.id);
    if (existing?.peer.address === peer.address) return;
    if (existing !== undefined) this.#closeLink(peer.id);
    this.#openLink(peer);
  }

  /** Closes the link to replica `id` (removed from the membership); what was queued for it is dropped. */
  removePeer(id: NodeId): void {
    this.#closeLink(id);
  }

  /** The ids this transport has a link to (every member but this replica whose address is known). */
  get peerIds(): NodeId[] {
    return [...this.#links.keys()].sort((a, b) => a - b);
  }

  send(messages: readonly Message[]): void {
    if (this.#closed) return;
    const touched = new Set<PeerLink>();
    for (const message of messages) {
      if (message.type === "snapshot") {
        this.#options.onSnapshot(message);
        continue;
      }
      const link = this.#links.get(message.to);
      if (link === undefined) continue;
      const bytes = messageBytes(message);
      const held = link.queuedBytes + link.writingBytes;
      // An empty link takes one message of any size (a single entry may exceed the bound); after it, the bound holds.
      const full = link.queue.length >= this.#options.peerQueueMessagesMax || (held > 0 && held + bytes > this.#options.peerStreamBytesMax);
      if (full) continue;
      link.queue.push(message);
      link.queuedBytes += bytes;
      touched.add(link);
    }
    for (const link of touched) this.#pump(link);
  }

  /** Streams a snapshot to peer `send.to` (InstallSnapshot); rejects when the peer is unknown or the transfer fails. */
  sendSnapshot(send: SnapshotSend, limits: SnapshotTransferLimits): Promise<InstallSnapshotResponse> {
    const link = this.#links.get(send.to);
    if (link === undefined || this.#closed) return Promise.reject(new Error(`no link to replica ${send.to}`));
    return sendSnapshot(link.client, send, limits);
  }

  close(): void {
    this.#closed = true;
    for (const id of [...this.#links.keys()]) this.#closeLink(id);
  }

  /** The link to `peer`, created here only: its stream opens with the first message. */
  #openLink(peer: Peer): void {
    const client = new ReplicationClient(peer.address, this.#options.channelCredentials, grpcChannelOptions(this.#options.messageBytesMax));
    this.#links.set(peer.id, {
      peer,
      client,
      stream: undefined,
      openedAtMs: 0,
      waitingForDrain: false,
      queue: [],
      queuedBytes: 0,
      writingBytes: 0,
      progressAtMs: 0,
      reopenTimer: undefined,
      reopenDelayMs: STREAM_REOPEN_MS_FIRST,
      stallTimer: undefined,
      closed: false,
    });
  }

  /** Ends the link to peer `id`, its stream and its channel; what it held is dropped. */
  #closeLink(id: NodeId): void {
    const link = this.#links.get(id);
    if (link === undefined) return;
    this.#links.delete(id);
    link.closed = true;
    link.queue = [];
    link.queuedBytes = 0;
    this.#timers.clearTimeout(link.reopenTimer);
    this.#timers.clearTimeout(link.stallTimer);
    const stream = link.stream;
    link.stream = undefined;
    stream?.end();
    link.client.close();
  }

  /** Writes what is queued while the stream takes it; opens the stream first when there is none and none is pending. */
  #pump(link: PeerLink): void {
    if (link.closed || link.queue.length === 0) return;
    if (link.stream === undefined) {
      if (link.reopenTimer === undefined) this.#openStream(link);
      return;
    }
    const stream = link.stream;
    while (!link.waitingForDrain && link.queue.length > 0 && link.stream === stream) {
      const batch = this.#takeBatch(link);
      const { identity } = this.#options;
      const request: StepRequest = {
        clusterId: identity.clusterId,
        peersHash: identity.peersHash,
        messages: batch.messages.map(messageToWire),
        clusterLimits: identity.clusterLimits ?? "",
      };
      link.writingBytes += batch.bytes;
      const more = stream.write(request, () => {
        if (link.stream !== stream) return;
        link.writingBytes -= batch.bytes;
        link.progressAtMs = this.#timers.now();
      });
      if (!more) link.waitingForDrain = true;
    }
    this.#armStallCheck(link);
  }

  /** The queued messages that fit in one gRPC message (at least one). */
  #takeBatch(link: PeerLink): { messages: StepMessage[]; bytes: number } {
    const bytesMax = this.#options.messageBytesMax - STEP_OVERHEAD_BYTES;
    let bytes = 0;
    let count = 0;
    while (count < link.queue.length) {
      const next = bytes + messageBytes(link.queue[count]!);
      if (count > 0 && next > bytesMax) break;
      bytes = next;
      count++;
    }
    link.queuedBytes -= bytes;
    return { messages: link.queue.splice(0, count), bytes };
  }

  #openStream(link: PeerLink): void {
    const stream = link.client.stepStream((err: ServiceError | null) => {
      if (link.stream !== stream) return;
      this.#streamBroke(link, err);
    });
    link.stream = stream;
    link.openedAtMs = this.#timers.now();
    link.progressAtMs = link.openedAtMs;
    link.waitingForDrain = false;
    link.writingBytes = 0;
    stream.on("drain", () => {
      if (link.stream !== stream) return;
      link.waitingForDrain = false;
      link.progressAtMs = this.#timers.now();
      this.#pump(link);
    });
    this.#pump(link);
  }

  /**
   * The stream ended (the peer refused a batch, went away, or did not run
   * StepStream): drop what it carried and what queued, and reopen it after a backoff.
   */
  #streamBroke(link: PeerLink, err: ServiceError | null): void {
    const lived = this.#timers.now() - link.openedAtMs;
    link.stream = undefined;
    link.waitingForDrain = false;
    link.writingBytes = 0;
    link.queue = [];
    link.queuedBytes = 0;
    this.#timers.clearTimeout(link.stallTimer);
    link.stallTimer = undefined;
    if (link.closed || this.#closed) return;
    const refusal = err === null ? null : refusalText(link.peer, err);
    if (refusal !== null) this.#options.onRefused(refusal);
    if (lived >= STREAM_HEALTHY_MS) link.reopenDelayMs = STREAM_REOPEN_MS_FIRST;
    const delayMs = link.reopenDelayMs;
    link.reopenDelayMs = Math.min(link.reopenDelayMs * 2, STREAM_REOPEN_MS_LAST);
    link.reopenTimer = this.#timers.setTimeout(() => {
      link.reopenTimer = undefined;
      // Opened again by the next message: a quiet link holds no stream open for nothing.
      this.#pump(link);
    }, delayMs);
  }

  /** While bytes wait on the stream, checks that they move; a stream stuck for peerRpcTimeoutMs is cancelled. */
  #armStallCheck(link: PeerLink): void {
    if (link.stallTimer !== undefined || link.stream === undefined) return;
    if (link.writingBytes === 0 && link.queue.length === 0) return;
    const timeoutMs = this.#options.peerRpcTimeoutMs;
    link.stallTimer = this.#timers.setTimeout(() => {
      link.stallTimer = undefined;
      const stream = link.stream;
      if (stream === undefined || (link.writingBytes === 0 && link.queue.length === 0)) return;
      if (this.#timers.now() - link.progressAtMs < timeoutMs) {
        this.#armStallCheck(link);
        return;
      }
      // Cancelling reports CANCELLED through the call's callback: #streamBroke reopens.
      stream.cancel();
    }, timeoutMs);
  }
}

/** What to log when a peer ended our stream with an error worth a person's attention, or null (it went away). */
function refusalText(peer: Peer, err: ServiceError): string | null {
  const where = `replica ${peer.id} at ${peer.address}`;
  switch (err.code) {
    case Status.FAILED_PRECONDITION:
    case Status.PERMISSION_DENIED:
    case Status.UNAUTHENTICATED:
    case Status.INVALID_ARGUMENT:
    case Status.RESOURCE_EXHAUSTED:
      return `${where} refused our Raft messages: ${err.details}`;
    case Status.UNIMPLEMENTED:
      return (
        `${where} does not serve Replication.StepStream (it runs an older LogStore that takes Raft messages by Step only): ` +
        `upgrade every replica of the cluster to the same version`
      );
    default:
      return null;
  }
}

/** Room for the request's own fields next to the messages' entries. */
const STEP_OVERHEAD_BYTES = 16 * 1024;

/** An upper estimate of a message's encoded size. */
function messageBytes(message: Message): number {
  if (message.type !== "append") return 64;
  return message.entries.reduce((sum, entry) => sum + entry.data.length + 32, 64);
}
