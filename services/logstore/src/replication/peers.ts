import { createHash } from "node:crypto";
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
    const match = /^(\d{1,9})=(.+):(\d{1,5})$/.exec(item);
    if (match === null || Number(match[1]) <= 0 || Number(match[3]) > 65535 || Number(match[3]) === 0) {
      throw invalidArgument(`--peers entry "${item}" is not id=host:port (id a positive integer, port 1..65535)`);
    }
    return { id: Number(match[1]), address: `${match[2]}:${match[3]}` };
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
 * A short digest of the membership, sent with every Raft message and stored
 * beside the hard state: replicas started with different peer lists must not
 * vote for or append to each other.
 */
export function peersHash(peers: readonly Peer[]): string {
  const canonical = [...peers]
    .sort((a, b) => a.id - b.id)
    .map((p) => `${p.id}=${p.address}`)
    .join(",");
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
}
