import { assert } from "@logplayer/common";
import type { Entry, RaftStatus } from "@logplayer/raft";
import { appendKey, dedupeEntryOf, type DedupeEntry, type DedupeTable } from "../dedupe-table";
import { toLogEntry } from "./wal-storage";

/** Why an append waiting for its commit will not get one from this replica (the client retries). */
export type AppendFailure =
  /** A new leader wrote another entry at the append's LSN. */
  | "overwritten"
  /** This replica stopped leading before the append (or the leader's no-op) committed. */
  | "leadership-lost"
  /** The LogStore is shutting down. */
  | "stopped";

/** One caller waiting for an append's outcome: its own append, or a retry of one still in flight. */
export interface AppendWaiter {
  readonly committed: (lsn: bigint, duplicate: boolean) => void;
  readonly failed: (reason: AppendFailure) => void;
}

/** A caller waiting until this leader's no-op is applied, after which its appends may be proposed. */
export interface LeaderReadyWaiter {
  readonly ready: () => void;
  readonly failed: (reason: AppendFailure) => void;
}

/** What to do with an append, decided before anything is proposed. */
export type AppendVerdict =
  | { readonly kind: "new" }
  /** Already committed at `lsn`: answer at once. */
  | { readonly kind: "duplicate"; readonly lsn: bigint }
  /** Older than the client's dedupe window: refuse (we cannot tell). */
  | { readonly kind: "too-old"; readonly oldestSeq: bigint }
  /** No live session matches: refuse with SESSION_EXPIRED (we cannot tell, and must not append it as new). */
  | { readonly kind: "session-expired" }
  /** Its original is proposed and not applied yet: the waiter now waits for the original's outcome. */
  | { readonly kind: "joined-in-flight"; readonly lsn: bigint };

/**
 * The identity of an idempotent append; anonymous appends (empty client id)
 * have none. `sessionLsn` names the session from RegisterClient (0: none).
 * A registration itself is proposed with `clientSeq` 0.
 */
export interface AppendIdentity {
  readonly clientId: string;
  readonly clientSeq: bigint;
  readonly sessionLsn: bigint;
}

/** Where an idempotent append stands, as far as the table and the appends in flight tell. */
export type AppendLocation =
  | { readonly kind: "committed"; readonly lsn: bigint }
  | { readonly kind: "in-flight"; readonly lsn: bigint }
  /** The session lives and the seq is neither committed nor in flight. */
  | { readonly kind: "absent" }
  /** Older than the session's window. */
  | { readonly kind: "too-old" }
  /** No live session matches: only the log itself can tell. */
  | { readonly kind: "no-session" };

/** A leadership change seen by observe(), for the adapter to log. */
export type LeadershipChange =
  | { readonly kind: "became-leader"; readonly term: bigint; readonly noopLsn: bigint }
  | { readonly kind: "lost-leadership"; readonly term: bigint }
  | undefined;

interface PendingAppend {
  readonly term: bigint;
  readonly identity: DedupeEntry;
  readonly key: string | undefined;
  readonly waiters: { readonly waiter: AppendWaiter; readonly duplicate: boolean }[];
}

/**
 * The LogStore's application state over Raft, with no I/O: which appends are
 * duplicates (the committed dedupe table plus the appends proposed and not yet
 * applied), who waits for which LSN, the leader's no-op gate (a new leader
 * takes appends only once its no-op is applied, so every earlier entry is in
 * the dedupe table), and each waiter's outcome when its LSN is applied.
 *
 * Driven by the Raft driver's inputs, in its order: observe() after every
 * advance, apply() for committed entries, verdict()/track() between them.
 */
export class LogStateMachine {
  readonly #dedupe: DedupeTable;
  readonly #waitersMax: number;
  readonly #pending = new Map<bigint, PendingAppend>();
  /** appendKey -> LSN, for appends proposed but not yet applied. */
  readonly #pendingKeys = new Map<string, bigint>();
  #leaderReadyWaiters: LeaderReadyWaiter[] = [];
  #appliedLsn: bigint;
  /** The no-op this node appended on winning `#leaderTerm` (0: not leading). */
  #leaderNoopLsn = 0n;
  #leaderTerm = 0n;

  /** `appliedLsn`: the last entry already in `dedupe` (rebuilt from the log on start). */
  constructor(dedupe: DedupeTable, appliedLsn: bigint, waitersMax: number) {
    assert(waitersMax >= 1, "log state machine: waitersMax must be positive");
    assert(appliedLsn >= 0n, "log state machine: negative applied LSN");
    this.#dedupe = dedupe;
    this.#appliedLsn = appliedLsn;
    this.#waitersMax = waitersMax;
  }

  get appliedLsn(): bigint {
    return this.#appliedLsn;
  }

  /** A leader's snapshot through `index` was installed (the dedupe table already holds its state). */
  restoredSnapshot(index: bigint): void {
    assert(index > this.#appliedLsn, `log state machine: snapshot at ${index} does not move past applied ${this.#appliedLsn}`);
    this.#appliedLsn = index;
  }

  /** Leading, and the no-op of this term is applied: appends may be proposed. */
  get leaderReady(): boolean {
    return this.#leaderTerm !== 0n && this.#appliedLsn >= this.#leaderNoopLsn;
  }

  get leading(): boolean {
    return this.#leaderTerm !== 0n;
  }

  /** The term this node leads as last observed (0: not leading); a proposal must be made in it. */
  get leaderTerm(): bigint {
    return this.#leaderTerm;
  }

  /** Appends proposed here and not yet applied (for tests and bounds). */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Adds a waiter for the no-op gate: called when the node leads but the gate
   * is not open (possibly before observe() has seen the new term). Returns
   * false when `waitersMax` callers already wait (the caller refuses: RESOURCE_EXHAUSTED).
   */
  waitLeaderReady(waiter: LeaderReadyWaiter): boolean {
    assert(!this.leaderReady, "log state machine: no-op gate wait while it is open");
    if (this.#leaderReadyWaiters.length >= this.#waitersMax) return false;
    this.#leaderReadyWaiters.push(waiter);
    return true;
  }

  /**
   * Decides an append: new, a committed duplicate, too old, or a retry of an
   * append still in flight (then `waiter` joins the original and is answered
   * with its outcome). Anonymous appends are always new.
   */
  verdict(identity: AppendIdentity, waiter: AppendWaiter): AppendVerdict {
    const { clientId, clientSeq, sessionLsn } = identity;
    if (clientId === "") return { kind: "new" };
    assert(clientSeq > 0n, "log state machine: verdict for an idempotent append with client_seq 0");
    const committed = this.#dedupe.lookup(clientId, clientSeq, sessionLsn);
    if (committed.kind === "duplicate" || committed.kind === "too-old") return committed;
    // A retry of an append in flight joins it, even if its session ended since: it gets the original's outcome.
    const lsn = this.#pendingKeys.get(appendKey(clientId, clientSeq));
    const pending = lsn === undefined ? undefined : this.#pending.get(lsn);
    if (lsn !== undefined && pending !== undefined) {
      pending.waiters.push({ waiter, duplicate: true });
      return { kind: "joined-in-flight", lsn };
    }
    if (committed.kind === "new" || this.#opensSession(identity)) return { kind: "new" };
    return { kind: "session-expired" };
  }

  /**
   * A client that did not register opens its session with its first append,
   * client_seq 1, and may pipeline seq 2, 3... behind it while seq 1 is in
   * flight. Any other seq without a session may be the retry of an append
   * whose session ended: not new. Nor is seq 1 from a client id whose session
   * ended (as far as the table remembers, DedupeLimits.endedClientsMax): it
   * may be the retry of that session's first append. Past that memory a
   * retry of seq 1 cannot be told from a new client's first append;
   * registering closes that gap, and is what the client library does.
   */
  #opensSession(identity: AppendIdentity): boolean {
    if (identity.sessionLsn !== 0n || this.#dedupe.hasSession(identity.clientId)) return false;
    if (this.#pendingKeys.has(appendKey(identity.clientId, 1n))) return true;
    return identity.clientSeq === 1n && !this.#dedupe.sessionEnded(identity.clientId);
  }

  /**
   * Where (clientId, sessionLsn, clientSeq) stands on this replica now: in
   * the dedupe table, in flight, absent from a live session, or not known
   * because no live session matches. Meaningful on the ready leader, whose
   * table plus appends in flight cover its whole log.
   */
  locate(identity: AppendIdentity): AppendLocation {
    const { clientId, clientSeq, sessionLsn } = identity;
    const lsn = this.#pendingKeys.get(appendKey(clientId, clientSeq));
    if (lsn !== undefined) return { kind: "in-flight", lsn };
    const committed = this.#dedupe.lookup(clientId, clientSeq, sessionLsn);
    switch (committed.kind) {
      case "duplicate":
        return { kind: "committed", lsn: committed.lsn };
      case "new":
        return { kind: "absent" };
      case "too-old":
        return { kind: "too-old" };
      case "no-session":
        return { kind: "no-session" };
    }
  }

  /** Records an append just proposed at (lsn, term); `waiter` learns its outcome on apply. */
  track(lsn: bigint, term: bigint, identity: AppendIdentity, waiter: AppendWaiter): void {
    assert(this.leaderReady && term === this.#leaderTerm, `log state machine: append tracked at term ${term} while not the ready leader`);
    assert(lsn > this.#appliedLsn && !this.#pending.has(lsn), `log state machine: LSN ${lsn} tracked twice or already applied`);
    const { clientId, clientSeq } = identity;
    // A registration (seq 0) is not an append anyone retries: it has no key.
    const key = clientId === "" || clientSeq === 0n ? undefined : appendKey(clientId, clientSeq);
    const entry: DedupeEntry =
      clientId === "" ? undefined : clientSeq === 0n ? { kind: "registration", clientId } : { kind: "append", clientId, clientSeq };
    this.#pending.set(lsn, { term, identity: entry, key, waiters: [{ waiter, duplicate: false }] });
    if (key !== undefined) this.#pendingKeys.set(key, lsn);
  }

  /**
   * Applies committed entries in order: records idempotent appends in the
   * dedupe table and settles their waiters (committed if the entry is the one
   * proposed, overwritten if a new leader put another there). Opens the no-op gate.
   */
  apply(entries: readonly Entry[]): void {
    for (const entry of entries) {
      assert(entry.index === this.#appliedLsn + 1n, `apply of ${entry.index} after ${this.#appliedLsn}`);
      this.#appliedLsn = entry.index;
      const pending = this.#pending.get(entry.index);
      // The entry proposed here is the one committed when the terms match: its identity is known without decoding.
      const identity = pending !== undefined && pending.term === entry.term ? pending.identity : appliedIdentity(entry);
      // Every entry, no-ops included: they age the sessions, as the rebuild from the log does.
      this.#dedupe.applyEntry(entry.index, identity);
      if (pending === undefined) continue;
      this.#pending.delete(entry.index);
      if (pending.key !== undefined) this.#pendingKeys.delete(pending.key);
      for (const { waiter, duplicate } of pending.waiters) {
        if (pending.term === entry.term) waiter.committed(entry.index, duplicate);
        else waiter.failed("overwritten");
      }
    }
    if (this.leaderReady) this.#openGate();
  }

  #openGate(): void {
    const waiters = this.#leaderReadyWaiters;
    this.#leaderReadyWaiters = [];
    for (const waiter of waiters) waiter.ready();
  }

  /**
   * Notices leadership changes after every advance. Winning a term closes the
   * gate until its no-op (the last entry then) is applied; losing it fails
   * every waiter, because what they wait for may never commit under this leader.
   */
  observe(status: Pick<RaftStatus, "role" | "term" | "lastIndex">): LeadershipChange {
    if (status.role === "leader" && this.#leaderTerm !== status.term) {
      this.#leaderTerm = status.term;
      this.#leaderNoopLsn = status.lastIndex;
      if (this.leaderReady) this.#openGate();
      return { kind: "became-leader", term: status.term, noopLsn: status.lastIndex };
    }
    if (status.role !== "leader" && (this.#leaderTerm !== 0n || this.#leaderReadyWaiters.length > 0)) {
      const wasLeading = this.#leaderTerm !== 0n;
      this.#leaderTerm = 0n;
      this.#leaderNoopLsn = 0n;
      this.failAll("leadership-lost");
      return wasLeading ? { kind: "lost-leadership", term: status.term } : undefined;
    }
    return undefined;
  }

  /** Fails every waiter (leadership lost, or shutting down). */
  failAll(reason: AppendFailure): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#pendingKeys.clear();
    const leaderReadyWaiters = this.#leaderReadyWaiters;
    this.#leaderReadyWaiters = [];
    for (const append of pending) for (const { waiter } of append.waiters) waiter.failed(reason);
    for (const waiter of leaderReadyWaiters) waiter.failed(reason);
  }
}

/** What an applied entry means to the dedupe table (undefined for a leader no-op). */
function appliedIdentity(entry: Entry): DedupeEntry {
  if (entry.kind !== "normal") return undefined;
  return dedupeEntryOf(toLogEntry(entry).entry);
}
