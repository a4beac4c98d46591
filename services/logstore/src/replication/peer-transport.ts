import { type ChannelCredentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { assert, grpcChannelOptions, Status } from "@logplayer/common";
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
  /** Messages waiting for the Step call to one peer; beyond it new ones are dropped (Raft resends). */
  readonly peerQueueMessagesMax: number;
  readonly peerRpcTimeoutMs: number;
  /** mTLS with this replica's certificate, or insecure. */
  readonly channelCredentials: ChannelCredentials;
  /** Logs a refusal by a peer (rate-limited by the caller). */
  readonly onRefused: (text: string) => void;
  /** A snapshot message from the core: it travels by InstallSnapshot (sendSnapshot), not Step. */
  readonly onSnapshot: (message: SnapshotMessage) => void;
}

/**
 * One peer's outbound channel: ONE Step call in flight at a time, carrying
 * everything queued meanwhile. Separate concurrent unary calls can be handled
 * out of order by the receiver, and a reordered AppendEntries makes the
 * leader fall back to probing; one call at a time keeps the order and
 * batches under load.
 */
interface PeerLink {
  readonly peer: Peer;
  readonly client: ReplicationClient;
  queue: StepMessage[];
  sending: boolean;
}

/** Raft messages to the other replicas over gRPC Replication.Step: the driver's transport port. */
export class PeerTransport implements RaftTransport {
  readonly #options: PeerTransportOptions;
  readonly #links = new Map<NodeId, PeerLink>();
  #closed = false;

  constructor(options: PeerTransportOptions) {
    this.#options = options;
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
    if (existing !== undefined) this.removePeer(peer.id);
    this.#links.set(peer.id, this.#openLink(peer));
  }

  /** Closes the link to replica `id` (removed from the membership); what was queued for it is dropped. */
  removePeer(id: NodeId): void {
    const link = this.#links.get(id);
    if (link === undefined) return;
    this.#links.delete(id);
    link.queue = [];
    link.client.close();
  }

  /** The ids this transport has a link to (every member but this replica whose address is known). */
  get peerIds(): NodeId[] {
    return [...this.#links.keys()].sort((a, b) => a - b);
  }

  #openLink(peer: Peer): PeerLink {
    const client = new ReplicationClient(peer.address, this.#options.channelCredentials, grpcChannelOptions(this.#options.messageBytesMax));
    return { peer, client, queue: [], sending: false };
  }

  send(messages: readonly Message[]): void {
    if (this.#closed) return;
    for (const message of messages) {
      if (message.type === "snapshot") {
        this.#options.onSnapshot(message);
        continue;
      }
      const link = this.#links.get(message.to);
      if (link === undefined || link.queue.length >= this.#options.peerQueueMessagesMax) continue;
      link.queue.push(message);
    }
    for (const link of this.#links.values()) if (!link.sending && link.queue.length > 0) this.#flush(link);
  }

  /** Streams a snapshot to peer `send.to` (InstallSnapshot); rejects when the peer is unknown or the transfer fails. */
  sendSnapshot(send: SnapshotSend, limits: SnapshotTransferLimits): Promise<InstallSnapshotResponse> {
    const link = this.#links.get(send.to);
    if (link === undefined || this.#closed) return Promise.reject(new Error(`no link to replica ${send.to}`));
    return sendSnapshot(link.client, send, limits);
  }

  close(): void {
    this.#closed = true;
    for (const link of this.#links.values()) link.client.close();
  }

  /** Sends the queued messages that fit in one gRPC message; the next call starts when this one returns. */
  #flush(link: PeerLink): void {
    assert(!link.sending && link.queue.length > 0, "flush without messages or while sending");
    const bytesMax = this.#options.messageBytesMax - STEP_OVERHEAD_BYTES;
    let bytes = 0;
    let count = 0;
    while (count < link.queue.length) {
      bytes += messageBytes(link.queue[count]!);
      if (count > 0 && bytes > bytesMax) break;
      count++;
    }
    const batch = link.queue.splice(0, count);
    link.sending = true;
    const { identity } = this.#options;
    const request: StepRequest = {
      clusterId: identity.clusterId,
      peersHash: identity.peersHash,
      messages: batch.map(messageToWire),
      clusterLimits: identity.clusterLimits ?? "",
    };
    const deadline = Date.now() + this.#options.peerRpcTimeoutMs;
    link.client.step(request, new Metadata(), { deadline }, (err: ServiceError | null) => {
      link.sending = false;
      // A failed call loses its messages, like a lossy network: Raft resends what matters.
      if (err !== null && err.code === Status.FAILED_PRECONDITION) {
        this.#options.onRefused(`replica ${link.peer.id} at ${link.peer.address} refused our messages: ${err.details}`);
      }
      if (!this.#closed && this.#links.get(link.peer.id) === link && link.queue.length > 0) this.#flush(link);
    });
  }
}

/** Room for the request's own fields next to the messages' entries. */
const STEP_OVERHEAD_BYTES = 16 * 1024;

/** An upper estimate of a message's encoded size. */
function messageBytes(message: Message): number {
  if (message.type !== "append") return 64;
  return message.entries.reduce((sum, entry) => sum + entry.data.length + 32, 64);
}
