import { describeTransactionLimits, invalidArgument, type TransactionLimits } from "@logplayer/common";
import { VOTERS_MAX } from "@logplayer/raft";

/** One replica of the LogStore cluster: its Raft id and the gRPC address peers and clients use. */
export interface Peer {
  readonly id: number;
  readonly address: string;
}

/**
 * Parses `--peers 1=host:port,2=host:port,3=host:port`. Ids are positive
 * integers, unique, at most VOTERS_MAX of them. Throws INVALID_ARGUMENT.
 */
export function parsePeers(text: string): Peer[] {
  const items = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (items.length === 0 || items.length > VOTERS_MAX) {
    throw invalidArgument(`--peers needs 1..${VOTERS_MAX} entries of id=host:port, got "${text}"`);
  }
  const peers = items.map((item) => {
    const match = /^(\d{1,9})=(.+)$/.exec(item);
    if (match === null || Number(match[1]) <= 0 || memberAddressProblem(match[2]!) !== null) {
      throw invalidArgument(`--peers entry "${item}" is not id=host:port (id a positive integer, port 1..65535)`);
    }
    return { id: Number(match[1]), address: match[2]! };
  });
  const ids = new Set(peers.map((p) => p.id));
  if (ids.size !== peers.length) throw invalidArgument(`--peers has duplicate ids: "${text}"`);
  return peers.sort((a, b) => a.id - b.id);
}

/**
 * The cluster's transaction limits (cluster.json) as sent with every Raft
 * message and probe: replicas created with different limits must not form a
 * cluster, since an entry one accepts another could refuse to deliver.
 */
export function clusterLimitsText(limits: TransactionLimits): string {
  return describeTransactionLimits(limits);
}

/** The refusal text for a sender whose cluster limits differ (the starting replica recognises it by its prefix). */
export const LIMITS_MISMATCH = "cluster limits mismatch";

/**
 * What a replicated cluster's replicas send as `peers_hash` in every Raft
 * message and probe, and store in raft-state.json. It was a digest of the
 * static --peers list; membership now changes through the log (config
 * entries), so the list no longer identifies the cluster. What does:
 * - the cluster id (cluster.json, shared by every replica): a message naming
 *   another is refused, as is one of a single voter's data directory;
 * - with mTLS, the sender's replica certificate, from the cluster's CA, bound
 *   to every message's `from` (replication-service.ts);
 * - the Raft core's own member check: a message from a replica that is not a
 *   voter or learner of this replica's membership is dropped.
 */
export const REPLICATED_CLUSTER_MODE = "replicated";

/** A replica address as --peers, the config entries and AddMember take it: host:port, port 1..65535. */
export const MEMBER_ADDRESS_BYTES_MAX = 255;

/** Why `address` is not host:port (a name, IPv4 or [IPv6] host; port 1..65535), or null. */
export function memberAddressProblem(address: string): string | null {
  if (address.length === 0 || address.length > MEMBER_ADDRESS_BYTES_MAX) {
    return `a replica address has 1..${MEMBER_ADDRESS_BYTES_MAX} characters, got ${address.length}`;
  }
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(address);
  const port = match === null ? 0 : Number(match[2]);
  if (match === null || port < 1 || port > 65535) return `"${address.slice(0, 64)}" is not host:port (port 1..65535)`;
  return null;
}
