import type { HardState, NodeId } from "@logplayer/raft";

/**
 * What a replica that starts with an empty data directory does. It cannot
 * tell from its own disk whether the cluster is new or whether it lost its
 * disk: in the second case it may have voted and acknowledged entries the
 * cluster counted on, and a blank vote could elect a replica that misses a
 * committed entry (issue #12, scenario 1). Its peers can tell: a peer that has
 * taken part in an election has a term above 0, and one that holds an entry
 * has a last index above 0.
 */

/** What a peer answered to Replication.Probe. */
export interface ProbeAnswer {
  readonly state: "blank" | "voter" | "rejoining";
  readonly term: bigint;
  readonly lastIndex: bigint;
  /** The highest index it knows to be committed. */
  readonly commit: bigint;
}

export type BlankStartDecision =
  /** Every peer answered and none has done anything yet: this is a new cluster. */
  | { readonly kind: "bootstrap" }
  /** The cluster exists and --join was given: start rejoining with this hard state. */
  | { readonly kind: "rejoin"; readonly hardState: HardState; readonly existing: ExistingPeer }
  /** The cluster exists and --join was not given: refuse to start, saying why. */
  | { readonly kind: "refuse"; readonly reason: string }
  /** Not every peer has answered yet (or, to rejoin, not all of them): ask again. */
  | { readonly kind: "wait"; readonly missing: readonly NodeId[] };

interface ExistingPeer {
  readonly id: NodeId;
  readonly term: bigint;
  readonly lastIndex: bigint;
}

/**
 * Decides from the peers' answers so far (undefined = no answer yet). Pure.
 *
 * Rejoining needs an answer from EVERY peer: any vote this replica cast
 * before its loss went to a peer, which is now in that term or a later one,
 * so the highest term among all peers is at least every term it voted in. It
 * starts in that term with its vote spent (on itself), so it cannot vote
 * twice in a term, and rejects every leader of an earlier term. It votes
 * again once its durable commit index reaches the highest commit index any
 * peer reported and holds a committed entry of its leader's term (RaftNode's
 * "rejoin" section says why both).
 */
export function decideBlankStart(
  selfId: NodeId,
  answers: ReadonlyMap<NodeId, ProbeAnswer | undefined>,
  join: boolean,
  probedWhileBlank: ReadonlySet<NodeId> = new Set(),
): BlankStartDecision {
  const missing = [...answers].filter(([, answer]) => answer === undefined).map(([id]) => id);
  const existing = [...answers]
    .flatMap(([id, answer]) => (answer !== undefined && hasHistory(answer) ? [{ id, term: answer.term, lastIndex: answer.lastIndex }] : []))
    .sort((a, b) => (a.term === b.term ? cmp(b.lastIndex, a.lastIndex) : cmp(b.term, a.term)));
  const newest = existing[0];
  if (newest === undefined) return missing.length === 0 ? { kind: "bootstrap" } : { kind: "wait", missing };
  // Peers start at about the same time: every peer with a history asked THIS replica, as a blank replica itself, while
  // this one was already blank in this process, so they formed the cluster after counting it blank. It has not voted
  // or acknowledged anything since it started, so it is a new voter of that cluster, not a lost one.
  if (!join && existing.every((peer) => probedWhileBlank.has(peer.id))) return { kind: "bootstrap" };
  if (!join) {
    return {
      kind: "refuse",
      reason:
        `the data directory is empty, but replica ${newest.id} of this cluster is in term ${newest.term} with a log up to ` +
        `LSN ${newest.lastIndex}: this replica has lost its data (or was never part of the cluster). A blank replica could ` +
        "elect a leader that misses acknowledged entries, so it does not vote unasked: start it with --join to catch up " +
        "from the leader as a non-voter; it votes again once it holds every committed entry",
    };
  }
  if (missing.length > 0) return { kind: "wait", missing };
  const commits = [...answers.values()].map((answer) => answer?.commit ?? 0n);
  const rejoinUntil = commits.reduce((a, b) => (a > b ? a : b), 0n);
  return { kind: "rejoin", hardState: { term: newest.term, vote: selfId, commit: 0n, rejoinUntil }, existing: newest };
}

export type DamagedStartDecision =
  /** Every peer answered: start rejoining with this hard state (written before the damaged entries are dropped). */
  { readonly kind: "rejoin"; readonly hardState: HardState } | { readonly kind: "wait"; readonly missing: readonly NodeId[] };

/**
 * Decides how a replica whose WAL is damaged starts: it keeps the good prefix
 * (up to `keptLastLsn`) and drops the damaged record and everything after it.
 * Entries it dropped may have been acknowledged and counted in a majority, so
 * it is in the lost-its-disk case for that suffix and rejoins the same way:
 * no vote, no campaign until its durable commit index reaches `rejoinUntil`
 * and holds a committed entry of its leader's term. Its raft-state.json is
 * intact, so it keeps its own term and vote (no vote twice in a term); its
 * commit index is cut to the prefix it still holds. `rejoinUntil` is the
 * highest commit index it knew or any peer reports, so it needs an answer
 * from EVERY peer, as a blank rejoin does. Pure.
 */
export function decideDamagedStart(
  stored: HardState,
  keptLastLsn: bigint,
  answers: ReadonlyMap<NodeId, ProbeAnswer | undefined>,
): DamagedStartDecision {
  const missing = [...answers].filter(([, answer]) => answer === undefined).map(([id]) => id);
  if (missing.length > 0) return { kind: "wait", missing };
  const known = [stored.commit, stored.rejoinUntil ?? 0n, ...[...answers.values()].map((answer) => answer?.commit ?? 0n)];
  const rejoinUntil = known.reduce((a, b) => (a > b ? a : b), 0n);
  const commit = stored.commit < keptLastLsn ? stored.commit : keptLastLsn;
  return { kind: "rejoin", hardState: { term: stored.term, vote: stored.vote, commit, rejoinUntil } };
}

/** What a replica with a damaged WAL answers a peer's probe while it asks its own. */
export function damagedProbeAnswer(stored: HardState, keptLastLsn: bigint): ProbeAnswer {
  return {
    state: "rejoining",
    term: stored.term,
    lastIndex: keptLastLsn,
    commit: stored.commit < keptLastLsn ? stored.commit : keptLastLsn,
  };
}

/** Has this replica ever taken part in an election or held an entry? */
function hasHistory(answer: ProbeAnswer): boolean {
  return answer.state === "rejoining" || answer.term > 0n || answer.lastIndex > 0n;
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
