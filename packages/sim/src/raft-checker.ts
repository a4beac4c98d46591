import type { Entry, NodeId, RaftStatus } from "@logplayer/raft";

/** A broken safety property; the scenario stops and reports it with the seed. */
export class InvariantViolation extends Error {
  override readonly name = "InvariantViolation";
}

function violated(message: string): never {
  throw new InvariantViolation(message);
}

/** What the checker sees of one node's log (everything written so far). */
export interface LogView {
  lastIndex(): bigint;
  term(index: bigint): bigint | undefined;
  entryKey(index: bigint): string | undefined;
  /** The first index still held (a compacted log starts later; a snapshot holds what came before). */
  firstIndex?(): bigint;
}

/** An entry a node's log recovered after a crash, with its content's identity (as EntryKeyOf gives it). */
export interface RecoveredEntry {
  readonly index: bigint;
  readonly term: bigint;
  readonly key: string;
}

/** Identity of an entry's content for comparisons: kind and payload id. */
export type EntryKeyOf = (entry: Entry) => string;

/**
 * Raft's safety properties (Figure 3 of the paper), checked over the whole
 * history of a run rather than only snapshots:
 *
 * - Election safety: at most one leader per term, ever.
 * - Log matching: an (index, term) pair, wherever and whenever it is
 *   written, always has the same content and the same term before it. By
 *   induction this is "same (index, term) => identical prefixes".
 * - Leader completeness: a node that becomes leader of term T holds every
 *   entry committed in a term before T. The checker learns what was
 *   committed, and in which term, from leaders' commit indexes. (A slow
 *   candidate may win an old term after a newer term has committed more;
 *   that is legal, so only earlier-term commits are required.)
 * - State-machine safety: no two nodes apply different entries at one index.
 * - Commit monotonic: a node's commit index never goes back while it runs.
 */
export class RaftInvariantChecker {
  private readonly leaderOfTerm = new Map<bigint, NodeId>();
  /** `${index}/${term}` -> `${prevTerm}|${content}` */
  private readonly written = new Map<string, string>();
  /** index -> `${term}|${content}` of the entry applied there. */
  private readonly applied = new Map<bigint, string>();
  private readonly lastCommit = new Map<NodeId, bigint>();
  private appliedMax = 0n;
  /** index -> the term of the leader seen committing it, and `${entryTerm}|${content}`. */
  private readonly committed = new Map<bigint, { readonly commitTerm: bigint; readonly key: string }>();
  /** Every index up to here has a `committed` record. */
  private committedWatermark = 0n;

  constructor(private readonly entryKey: EntryKeyOf) {}

  /** Entries just written to a node's log; `termBefore` is the term at entries[0].index - 1 after the write. */
  onWrite(node: NodeId, entries: readonly Entry[], termBefore: bigint | undefined): void {
    let prevTerm = termBefore;
    for (const entry of entries) {
      if (prevTerm === undefined) violated(`log matching: n${node} wrote index ${entry.index} after a hole`);
      const key = `${entry.index}/${entry.term}`;
      const value = `${prevTerm}|${this.entryKey(entry)}`;
      const seen = this.written.get(key);
      if (seen === undefined) this.written.set(key, value);
      else if (seen !== value) {
        violated(`log matching: n${node} wrote (index ${entry.index}, term ${entry.term}) as ${value}, seen before as ${seen}`);
      }
      prevTerm = entry.term;
    }
  }

  /**
   * A node's whole log as its WAL recovered it on restart: every entry must be
   * one written there before, after the same term (a recovered entry that was
   * never written, or a hole, is a WAL that lost or invented data). `first`:
   * where the log must start (after a snapshot, the WAL's first LSN; the
   * snapshot check covers what comes before it).
   */
  onRecover(node: NodeId, entries: readonly RecoveredEntry[], first = 1n): void {
    let prevTerm = 0n;
    for (const [i, entry] of entries.entries()) {
      if (entry.index !== first + BigInt(i)) violated(`durability: n${node}'s WAL recovered index ${entry.index} at position ${i + 1}`);
      const seen = this.written.get(`${entry.index}/${entry.term}`);
      // A compacted log's first entry follows a snapshot: its term before is the written one.
      if (i === 0 && first > 1n) prevTerm = BigInt(seen?.split("|")[0] ?? "0");
      const value = `${prevTerm}|${entry.key}`;
      if (seen !== value) {
        violated(
          `durability: n${node}'s WAL recovered (index ${entry.index}, term ${entry.term}) as ${value}, written as ${seen ?? "nothing"}`,
        );
      }
      prevTerm = entry.term;
    }
  }

  onApply(node: NodeId, entry: Entry): void {
    const value = `${entry.term}|${this.entryKey(entry)}`;
    const seen = this.applied.get(entry.index);
    if (seen === undefined) {
      this.applied.set(entry.index, value);
      if (entry.index > this.appliedMax) this.appliedMax = entry.index;
    } else if (seen !== value) {
      violated(`state-machine safety: n${node} applied ${value} at index ${entry.index}, another node applied ${seen}`);
    }
  }

  /** A node restarted: its commit restarts from what it persisted. */
  onRestart(node: NodeId, commit: bigint): void {
    this.lastCommit.set(node, commit);
  }

  /** Called after every step with every running node. */
  checkNode(status: RaftStatus, log: LogView): void {
    const previous = this.lastCommit.get(status.id) ?? 0n;
    if (status.commit < previous) violated(`commit monotonic: n${status.id} commit ${status.commit} < ${previous}`);
    this.lastCommit.set(status.id, status.commit);
    if (status.role !== "leader") return;
    const leader = this.leaderOfTerm.get(status.term);
    if (leader === undefined) {
      this.leaderOfTerm.set(status.term, status.id);
      this.checkLeaderCompleteness(status, log);
    } else if (leader !== status.id) {
      violated(`election safety: n${status.id} and n${leader} both leaders in term ${status.term}`);
    }
    this.recordCommits(status, log);
  }

  private recordCommits(status: RaftStatus, log: LogView): void {
    const first = log.firstIndex?.() ?? 1n;
    for (let index = this.committedWatermark + 1n; index <= status.commit; index++) {
      if (index < first) violated(`commit: leader n${status.id} commits ${index}, below its first index ${first}, unseen`);
      const term = log.term(index);
      if (term === undefined) violated(`commit: leader n${status.id} commits ${status.commit} beyond its log`);
      this.committed.set(index, { commitTerm: status.term, key: `${term}|${log.entryKey(index)}` });
      this.committedWatermark = index;
    }
  }

  /** Highest index applied anywhere. */
  appliedIndexMax(): bigint {
    return this.appliedMax;
  }

  appliedKey(index: bigint): string | undefined {
    return this.applied.get(index);
  }

  private checkLeaderCompleteness(status: RaftStatus, log: LogView): void {
    // Below its first index a leader holds a snapshot, which is taken from committed entries only.
    const first = log.firstIndex?.() ?? 1n;
    for (const [index, record] of this.committed) {
      if (record.commitTerm >= status.term || index < first) continue;
      const term = log.term(index);
      const key = term === undefined ? undefined : `${term}|${log.entryKey(index)}`;
      if (key !== record.key) {
        violated(
          `leader completeness: n${status.id} leader of term ${status.term} has ${key ?? "nothing"} at index ${index}, ` +
            `but ${record.key} was committed there in term ${record.commitTerm}`,
        );
      }
    }
  }
}
