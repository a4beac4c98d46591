import type { ProcessSpec } from "@logplayer/cluster";
import { assert } from "@logplayer/common";

/**
 * The links between LogStore replicas (Raft traffic), found from the plan.
 * Pure. A replica is started with `--replica-id <id> --peers 1=host:port,...`
 * (every replica, itself included) and every replica must be given the SAME
 * list: the LogStore refuses Raft messages from a replica whose list hashes
 * differently. So the chaos cluster cannot give each replica its own proxy
 * addresses; it gives every replica one listener per peer ("ingress"), and
 * the ingress tells senders apart by which process opened the connection
 * (see source-router.ts). Each ordered pair (from, to) is one link, cut and
 * stalled on its own, named like the other links: "logstore-1→logstore-2".
 */

export interface RaftLink {
  /** "logstore-1→logstore-2" */
  name: string;
  /** Process name of the sender (the replica that dials). */
  from: string;
  /** Process name of the receiver. */
  to: string;
}

export interface RaftReplica {
  name: string;
  replicaId: number;
  /** The replica's real gRPC address (what its --peers entry names before rewriting). */
  address: string;
}

export function linkName(from: string, to: string): string {
  return `${from}→${to}`;
}

/** The replicas of a replicated LogStore in the plan (empty for a single LogStore without --peers). */
export function raftReplicas(plan: readonly ProcessSpec[]): RaftReplica[] {
  const replicas: RaftReplica[] = [];
  for (const spec of plan) {
    if (spec.service !== "logstore" || flagValue(spec.args, "--peers") === undefined) continue;
    const id = Number(flagValue(spec.args, "--replica-id"));
    assert(Number.isInteger(id) && id > 0, `${spec.name} has a positive --replica-id`);
    replicas.push({ name: spec.name, replicaId: id, address: spec.grpcAddress });
  }
  return replicas;
}

/** Every ordered pair of distinct replicas, in plan order. */
export function raftLinks(replicas: readonly RaftReplica[]): RaftLink[] {
  return replicas.flatMap((from) =>
    replicas.filter((to) => to.name !== from.name).map((to) => ({ name: linkName(from.name, to.name), from: from.name, to: to.name })),
  );
}

/** The links that carry anything to or from `replica`: cutting them all partitions it from the others. */
export function raftLinksOf(links: readonly RaftLink[], replica: string): RaftLink[] {
  return links.filter((l) => l.from === replica || l.to === replica);
}

/**
 * A copy of the replica's spec whose `--peers` names `ingressById` instead of
 * the replicas' own addresses. Every replica gets the same list, so their
 * peer-list hashes still agree. Throws when a peer has no ingress.
 */
export function routePeersThroughIngress(spec: ProcessSpec, ingressById: ReadonlyMap<number, string>): ProcessSpec {
  const at = spec.args.indexOf("--peers");
  assert(at >= 0 && at + 1 < spec.args.length, `${spec.name} has --peers`);
  const args = [...spec.args];
  args[at + 1] = rewritePeerList(spec.args[at + 1]!, ingressById);
  return { ...spec, args };
}

/** "1=a:1,2=b:2" with each id's address replaced by `addressById`'s. */
export function rewritePeerList(list: string, addressById: ReadonlyMap<number, string>): string {
  return list
    .split(",")
    .map((item) => {
      const match = /^(\d+)=(.+)$/.exec(item.trim());
      assert(match !== null, `--peers entry ${JSON.stringify(item)} is id=host:port`);
      const address = addressById.get(Number(match[1]));
      assert(address !== undefined, `no address for replica ${match[1]}`);
      return `${match[1]}=${address}`;
    })
    .join(",");
}

function flagValue(args: readonly string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : undefined;
}
