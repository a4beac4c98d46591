import type { GapReport } from "@logplayer/delivery";
import type { LogEntry, Part } from "@logplayer/proto";
import type { SimNodeId } from "./network";
import type { Simulator } from "./simulator";
import type { DeliveryChecker } from "./delivery-checker";

/**
 * Everything that crosses the simulated network in the delivery scenario.
 * Streams and reads are named by ids unique over the whole run, so a
 * message for a stream or read its receiver no longer knows (it restarted,
 * or closed it) is simply ignored, as a real process would.
 */
export type DeliveryMessage =
  // LogPlayer -> shard: the Deliver stream.
  | { readonly kind: "hello"; readonly streamId: number }
  | { readonly kind: "batch"; readonly streamId: number; readonly parts: readonly Part[]; readonly commitLsn: bigint }
  // Shard -> LogPlayer.
  | { readonly kind: "hello-reply"; readonly streamId: number; readonly appliedLsn: bigint; readonly shardIncarnation: number }
  | { readonly kind: "ack"; readonly streamId: number; readonly appliedLsn: bigint }
  | { readonly kind: "gap"; readonly streamId: number; readonly report: GapReport }
  // LogPlayer -> LogStore: Read(from, to); toLsn 0 tails forever (the main stream).
  | { readonly kind: "read"; readonly readId: number; readonly fromLsn: bigint; readonly toLsn: bigint }
  | { readonly kind: "cancel"; readonly readId: number }
  // LogStore -> LogPlayer. `seq` numbers a read's messages from 1, so the receiving call can deliver them in
  // order or break, as a stream over TCP would; the keepalive says how many were sent (transport only).
  | {
      readonly kind: "entries";
      readonly readId: number;
      readonly seq: number;
      readonly entries: readonly LogEntry[];
      readonly commitLsn: bigint;
      /** The leader as the serving replica knows it (null: none), and whether it is the leader itself. */
      readonly leader: number | null;
      readonly fromLeader: boolean;
    }
  | { readonly kind: "keepalive"; readonly readId: number; readonly sentCount: number }
  | {
      readonly kind: "read-end";
      readonly readId: number;
      readonly seq: number;
      readonly ok: boolean;
      /** Refused because its start was trimmed (OUT_OF_RANGE): the requested start and the log's first LSN. */
      readonly trimmed?: { readonly fromLsn: bigint; readonly firstLsn: bigint };
    }
  // Client -> shard and back: Get(key, minLsn).
  | { readonly kind: "get"; readonly getId: number; readonly key: string; readonly minLsn: bigint }
  | {
      readonly kind: "get-reply";
      readonly getId: number;
      readonly key: string;
      readonly minLsn: bigint;
      readonly value: Uint8Array | undefined;
      readonly appliedLsn: bigint;
    };

/** The network as the processes see it (a SimNetwork underneath, which stamps the sender). */
export interface DeliveryLinks {
  send(from: SimNodeId, to: SimNodeId, message: DeliveryMessage): void;
  connected(a: SimNodeId, b: SimNodeId): boolean;
}

/** What every simulated process of the scenario shares. */
export interface DeliveryEnv {
  readonly sim: Simulator;
  readonly network: DeliveryLinks;
  readonly checker: DeliveryChecker;
  readonly shardCount: number;
  /** Whether `node` runs as `incarnation` and is reachable from `from` (the keepalive's view). */
  peerAlive(from: SimNodeId, node: SimNodeId, incarnation: number): boolean;
  /** The incarnation `node` runs now, or null when it is down (connection refused). */
  incarnationOf(node: SimNodeId): number | null;
  /** A fresh id for a stream, read or get. */
  nextId(): number;
  /** LogStore replicas (1 or 3): replica 0 is LOGSTORE_NODE; Read calls go to one of them. */
  readonly logstoreReplicas: number;
  /** The node of LogStore replica `replica`. */
  replicaNode(replica: number): SimNodeId;
  /** The commit LSN LogStore replica `replica` knows now (what its Status would answer; a follower may lag). */
  logstoreCommitLsn(replica: number): bigint;
}

/** A replica's address as the replicas' --peers (and the LogPlayer's --logstore) spell it. */
export function replicaAddress(replica: number): string {
  return `logstore-${replica}`;
}

/** Node ids: the LogStore is 0, shards 1..N, LogPlayers after them, the client last. */
export const LOGSTORE_NODE: SimNodeId = 0;
export function shardNode(shard: number): SimNodeId {
  return 1 + shard;
}

export function describeMessage(message: DeliveryMessage): string {
  switch (message.kind) {
    case "hello":
      return `hello s${message.streamId}`;
    case "batch": {
      const parts = message.parts.map((p) => `${p.prevLsn}>${p.lsn}${p.mutations.length === 0 ? "d" : ""}`).join(" ");
      return `batch s${message.streamId} [${parts}] commit ${message.commitLsn}`;
    }
    case "hello-reply":
      return `hello-reply s${message.streamId} applied ${message.appliedLsn}`;
    case "ack":
      return `ack s${message.streamId} applied ${message.appliedLsn}`;
    case "gap":
      return `gap s${message.streamId} applied ${message.report.appliedLsn} part ${message.report.prevLsn}>${message.report.lsn}`;
    case "read":
      return `read r${message.readId} [${message.fromLsn}, ${message.toLsn === 0n ? "tail" : message.toLsn}]`;
    case "cancel":
      return `cancel r${message.readId}`;
    case "entries": {
      const first = message.entries[0]?.lsn;
      const last = message.entries.at(-1)?.lsn;
      return `entries r${message.readId} [${first}..${last}] commit ${message.commitLsn}${message.fromLeader ? "" : ` leader ${message.leader}`}`;
    }
    case "keepalive":
      return `keepalive r${message.readId} sent ${message.sentCount}`;
    case "read-end":
      return `read-end r${message.readId} ${message.ok ? "ok" : message.trimmed === undefined ? "FAILED" : `TRIMMED (first ${message.trimmed.firstLsn})`}`;
    case "get":
      return `get g${message.getId} ${message.key} minLsn ${message.minLsn}`;
    case "get-reply":
      return `get-reply g${message.getId} applied ${message.appliedLsn}`;
  }
}
