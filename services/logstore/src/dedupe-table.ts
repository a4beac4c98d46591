import { assert, ErrorReason, failedPrecondition, invalidInput, LpError, Status } from "@logplayer/common";
import type { LogEntry } from "@logplayer/proto";

/** Bounds of the dedupe table. */
export interface DedupeLimits {
  /** Client sessions remembered; past it the least recently used one ends (evicted). */
  readonly clientsMax: number;
  /** Sequence numbers remembered per client (a client has at most this many appends in flight). */
  readonly seqsPerClientMax: number;
  /**
   * A session not used for more than this many log entries ends (expired). Counted in LSNs, not
   * time, so that every replica, and a replica rebuilding the table from its log, ends the same
   * sessions at the same entry: a replica's clock would make them disagree.
   */
  readonly sessionIdleEntriesMax: bigint;
  /** Log entries one LookupAppend may read when the session is gone (one such scan runs at a time). */
  readonly lookupScanEntriesMax: number;
  /**
   * Client ids whose session ended, remembered (most recent endings) so that
   * an unregistered client's retry of client_seq 1 after its session ended is
   * refused rather than opening a new session (see DedupeTable.sessionEnded).
   */
  readonly endedClientsMax: number;
}

export const DEFAULT_DEDUPE_LIMITS: DedupeLimits = {
  clientsMax: 100_000,
  seqsPerClientMax: 1024,
  sessionIdleEntriesMax: 10_000_000n,
  lookupScanEntriesMax: 1_000_000,
  endedClientsMax: 100_000,
};

export type DedupeVerdict =
  | { readonly kind: "new" }
  | { readonly kind: "duplicate"; readonly lsn: bigint }
  /** Older than the window kept for this client: we cannot tell, so we refuse rather than risk a second copy. */
  | { readonly kind: "too-old"; readonly oldestSeq: bigint }
  /**
   * No live session matches (client id, session LSN): never opened, evicted, expired, or replaced
   * by a newer registration. The table cannot tell whether the seq is in the log.
   */
  | { readonly kind: "no-session" };

/** What a committed log entry means to the table (undefined: nothing, e.g. a no-op or an anonymous append). */
export type DedupeEntry =
  /** RegisterClient: opens a session whose id is this entry's LSN. */
  | { readonly kind: "registration"; readonly clientId: string }
  | { readonly kind: "append"; readonly clientId: string; readonly clientSeq: bigint }
  | undefined;

interface ClientSession {
  readonly clientId: string;
  /** The registration entry's LSN; 0 for a session opened by an append without registration. */
  readonly sessionLsn: bigint;
  /** The LSN of the last entry that registered or appended in this session: its age is measured from it. */
  lastUsedLsn: bigint;
  /** seq -> LSN. */
  readonly seqs: Map<bigint, bigint>;
  /**
   * The seqs in `seqs`, in commit order, as a ring: the oldest is evicted
   * first. (Evicting through `seqs.keys()` instead walked over the deleted
   * entries V8 keeps at the front of a Map until it rehashes: ~12 us per
   * append in a profile.)
   */
  readonly order: bigint[];
  /** Index in `order` of the oldest seq. */
  head: number;
  /** Highest seq evicted from `seqs` (0 = none): anything at or below it and absent is unknown. */
  evictedSeqMax: bigint;
  /** Neighbours in the table's use order (null at either end). */
  older: ClientSession | null;
  newer: ClientSession | null;
}

/** One session as a snapshot holds it. */
export interface DedupeSessionSnapshot {
  readonly clientId: string;
  readonly sessionLsn: bigint;
  readonly lastUsedLsn: bigint;
  readonly evictedSeqMax: bigint;
  /** [seq, lsn], oldest first. */
  readonly seqs: readonly (readonly [bigint, bigint])[];
}

/** The whole table as of `positionLsn`, for the LogStore's snapshot: sessions least recently used first. */
export interface DedupeTableSnapshot {
  readonly positionLsn: bigint;
  readonly sessions: readonly DedupeSessionSnapshot[];
}

/** Sessions that ended since the table was made, by cause (for metrics and logs). */
export interface SessionEndCounts {
  evicted: number;
  expired: number;
}

/**
 * Idempotent appends by client session (Raft dissertation §6.3; Kafka's
 * producer ids): client id -> its session -> (clientSeq -> LSN) of COMMITTED
 * entries. A pure function of the committed log: `applyEntry` is called for
 * every committed entry in LSN order, both live (the log state machine) and
 * when rebuilding from the log on start, so every replica and every restart
 * holds the same sessions and reaches the same verdicts.
 *
 * A session is opened by a registration entry (RegisterClient; its id is the
 * entry's LSN) or, for a client that did not register, by its first append.
 * It ends when `clientsMax` other sessions were used since (evicted, least
 * recently used first) or when `sessionIdleEntriesMax` entries were committed
 * since its last use (expired). A retry in a session that ended cannot be
 * told from a new append, so the caller refuses it (SESSION_EXPIRED).
 */
export class DedupeTable {
  readonly #limits: DedupeLimits;
  readonly #sessions = new Map<string, ClientSession>();
  /**
   * Use order as a linked list, least recently used first, which is also ascending `lastUsedLsn`:
   * eviction and expiry look at the oldest in O(1). (Keeping the order in the Map by deleting and
   * re-inserting on each use, and reading its first entry, walked over the deleted slots V8 keeps
   * until it rehashes.)
   */
  #oldest: ClientSession | null = null;
  #newest: ClientSession | null = null;
  /** The last LSN applied: the position the table reflects. */
  #positionLsn = 0n;
  readonly #ended: SessionEndCounts = { evicted: 0, expired: 0 };
  /**
   * The ids of the last `endedClientsMax` sessions that ended, as a ring (an
   * id ending twice takes two slots), and how many slots each id holds.
   */
  readonly #endedRing: string[] = [];
  #endedHead = 0;
  readonly #endedSlots = new Map<string, number>();

  constructor(limits: DedupeLimits) {
    assert(limits.clientsMax >= 1 && limits.seqsPerClientMax >= 1, "dedupe limits must be positive");
    assert(limits.sessionIdleEntriesMax >= 1n && limits.lookupScanEntriesMax >= 1, "dedupe: limits must be positive");
    assert(limits.endedClientsMax >= 0, "dedupe: endedClientsMax must not be negative");
    this.#limits = limits;
  }

  get limits(): DedupeLimits {
    return this.#limits;
  }

  get clientCount(): number {
    return this.#sessions.size;
  }

  /** The last LSN applied to the table. */
  get positionLsn(): bigint {
    return this.#positionLsn;
  }

  get sessionsEnded(): Readonly<SessionEndCounts> {
    return this.#ended;
  }

  /**
   * Whether a session of `clientId` ended (evicted or expired) among the last
   * `endedClientsMax` endings, and the client has not opened another since.
   * Its retries cannot be judged: an unregistered client's client_seq 1 from
   * such an id is a possible retry, not a first append.
   */
  sessionEnded(clientId: string): boolean {
    return this.#endedSlots.has(clientId) && !this.#sessions.has(clientId);
  }

  /** Client ids remembered as ended (at most endedClientsMax). */
  get endedClientCount(): number {
    return this.#endedSlots.size;
  }

  /** Whether `clientId` has a live session, of any id. */
  hasSession(clientId: string): boolean {
    return this.#sessions.has(clientId);
  }

  /** The verdict for (clientId, sessionLsn, seq) against the committed log as applied so far. */
  lookup(clientId: string, seq: bigint, sessionLsn: bigint): DedupeVerdict {
    const session = this.#sessions.get(clientId);
    if (session === undefined || session.sessionLsn !== sessionLsn) return { kind: "no-session" };
    const lsn = session.seqs.get(seq);
    if (lsn !== undefined) return { kind: "duplicate", lsn };
    if (seq <= session.evictedSeqMax) return { kind: "too-old", oldestSeq: session.evictedSeqMax + 1n };
    return { kind: "new" };
  }

  /**
   * Applies the committed entry at `lsn` (the next one: LSNs come in order,
   * no-ops included, since they age sessions too). A registration opens a
   * session, replacing the client's previous one. An append is recorded in
   * its client's session; a client without one gets a session without
   * registration (its first append, or one that committed after its session
   * ended: a later retry in the old session then no longer matches). Then
   * sessions idle for more than `sessionIdleEntriesMax` entries expire.
   */
  applyEntry(lsn: bigint, entry: DedupeEntry): void {
    assert(lsn === this.#positionLsn + 1n || this.#positionLsn === 0n, `dedupe: entry ${lsn} applied after ${this.#positionLsn}`);
    this.#positionLsn = lsn;
    if (entry !== undefined) {
      assert(entry.clientId !== "", "dedupe: an entry without a client id");
      if (entry.kind === "registration") this.#open(entry.clientId, lsn);
      else this.#record(entry.clientId, entry.clientSeq, lsn);
    }
    this.#expireIdle();
  }

  /** The table as it is now (at positionLsn), for a snapshot. */
  exportSnapshot(): DedupeTableSnapshot {
    const sessions: DedupeSessionSnapshot[] = [];
    for (let session = this.#oldest; session !== null; session = session.newer) {
      const seqs: (readonly [bigint, bigint])[] = [];
      for (let i = 0; i < session.order.length; i++) {
        const seq = session.order[(session.head + i) % session.order.length]!;
        seqs.push([seq, session.seqs.get(seq)!]);
      }
      const { clientId, sessionLsn, lastUsedLsn, evictedSeqMax } = session;
      sessions.push({ clientId, sessionLsn, lastUsedLsn, evictedSeqMax, seqs });
    }
    return { positionLsn: this.#positionLsn, sessions };
  }

  /**
   * Fills an empty table from a snapshot: afterwards it is the table that
   * applying the log through snapshot.positionLsn made, and applyEntry goes on
   * from the next LSN. Throws (InvalidInput) on a snapshot no table could hold.
   */
  loadSnapshot(snapshot: DedupeTableSnapshot): void {
    assert(this.#sessions.size === 0 && this.#positionLsn === 0n, "dedupe: loading a snapshot into a used table");
    let lastUsed = 0n;
    for (const saved of snapshot.sessions) {
      if (saved.clientId === "" || this.#sessions.has(saved.clientId))
        throw invalidInput(`dedupe snapshot: bad or repeated client "${saved.clientId}"`);
      if (saved.lastUsedLsn < lastUsed || saved.lastUsedLsn > snapshot.positionLsn)
        throw invalidInput("dedupe snapshot: sessions out of use order");
      if (saved.seqs.length > this.#limits.seqsPerClientMax)
        throw invalidInput(`dedupe snapshot: client "${saved.clientId}" over its window`);
      lastUsed = saved.lastUsedLsn;
      const session: ClientSession = {
        clientId: saved.clientId,
        sessionLsn: saved.sessionLsn,
        lastUsedLsn: saved.lastUsedLsn,
        seqs: new Map(saved.seqs.map(([seq, lsn]) => [seq, lsn])),
        order: saved.seqs.map(([seq]) => seq),
        head: 0,
        evictedSeqMax: saved.evictedSeqMax,
        older: null,
        newer: null,
      };
      if (session.seqs.size !== session.order.length) throw invalidInput(`dedupe snapshot: client "${saved.clientId}" repeats a seq`);
      this.#sessions.set(session.clientId, session);
      this.#linkNewest(session);
    }
    if (this.#sessions.size > this.#limits.clientsMax) throw invalidInput("dedupe snapshot: more sessions than clientsMax");
    this.#positionLsn = snapshot.positionLsn;
  }

  /** Replaces everything the table holds by `snapshot` (a follower installing a leader's snapshot). */
  replaceWithSnapshot(snapshot: DedupeTableSnapshot): void {
    this.#sessions.clear();
    this.#oldest = null;
    this.#newest = null;
    this.#positionLsn = 0n;
    this.loadSnapshot(snapshot);
  }

  #open(clientId: string, sessionLsn: bigint): ClientSession {
    const session: ClientSession = {
      clientId,
      sessionLsn,
      lastUsedLsn: sessionLsn,
      seqs: new Map(),
      order: [],
      head: 0,
      evictedSeqMax: 0n,
      older: null,
      newer: null,
    };
    // A new registration replaces the client's session.
    const replaced = this.#sessions.get(clientId);
    if (replaced !== undefined) this.#unlink(replaced);
    this.#sessions.set(clientId, session);
    this.#linkNewest(session);
    while (this.#sessions.size > this.#limits.clientsMax) {
      const oldest = this.#oldest;
      assert(oldest !== null && oldest !== session, "dedupe: empty table over its bound");
      this.#end(oldest);
      this.#ended.evicted += 1;
    }
    return session;
  }

  #linkNewest(session: ClientSession): void {
    session.older = this.#newest;
    session.newer = null;
    if (this.#newest !== null) this.#newest.newer = session;
    else this.#oldest = session;
    this.#newest = session;
  }

  #unlink(session: ClientSession): void {
    if (session.older !== null) session.older.newer = session.newer;
    else this.#oldest = session.newer;
    if (session.newer !== null) session.newer.older = session.older;
    else this.#newest = session.older;
    session.older = null;
    session.newer = null;
  }

  #end(session: ClientSession): void {
    this.#unlink(session);
    assert(this.#sessions.delete(session.clientId), "dedupe: a listed session missing from the map");
    this.#rememberEnded(session.clientId);
  }

  #rememberEnded(clientId: string): void {
    const slotsMax = this.#limits.endedClientsMax;
    if (slotsMax === 0) return;
    if (this.#endedRing.length < slotsMax) {
      this.#endedRing.push(clientId);
    } else {
      const forgotten = this.#endedRing[this.#endedHead]!;
      const left = (this.#endedSlots.get(forgotten) ?? 0) - 1;
      if (left > 0) this.#endedSlots.set(forgotten, left);
      else this.#endedSlots.delete(forgotten);
      this.#endedRing[this.#endedHead] = clientId;
      this.#endedHead = (this.#endedHead + 1) % slotsMax;
    }
    this.#endedSlots.set(clientId, (this.#endedSlots.get(clientId) ?? 0) + 1);
  }

  /** Records a committed append. A (client, seq) already present keeps its first LSN. */
  #record(clientId: string, seq: bigint, lsn: bigint): void {
    let session = this.#sessions.get(clientId);
    if (session === undefined) {
      session = this.#open(clientId, 0n);
    } else if (session !== this.#newest) {
      this.#unlink(session);
      this.#linkNewest(session);
    }
    session.lastUsedLsn = lsn;
    if (session.seqs.has(seq)) return;
    session.seqs.set(seq, lsn);
    const windowMax = this.#limits.seqsPerClientMax;
    if (session.order.length < windowMax) {
      session.order.push(seq);
    } else {
      // Full ring: the slot of the oldest seq takes the new one.
      const oldest = session.order[session.head]!;
      assert(session.seqs.delete(oldest), "dedupe: ring and map disagree");
      if (oldest > session.evictedSeqMax) session.evictedSeqMax = oldest;
      session.order[session.head] = seq;
      session.head = (session.head + 1) % windowMax;
    }
    assert(session.seqs.size <= windowMax, "dedupe: window over its bound");
  }

  /** Ends the sessions unused for more than sessionIdleEntriesMax entries: they are the oldest in use order. */
  #expireIdle(): void {
    for (let oldest = this.#oldest; oldest !== null; oldest = this.#oldest) {
      if (this.#positionLsn - oldest.lastUsedLsn <= this.#limits.sessionIdleEntriesMax) return;
      this.#end(oldest);
      this.#ended.expired += 1;
    }
  }
}

/**
 * What a log entry means to the table. A registration is an entry with a
 * client id, client_seq 0 and an empty transaction (the LogPlayer delivers it
 * to no shard); an append with a client id is recorded; no-ops and anonymous
 * appends only age the sessions.
 */
export function dedupeEntryOf(entry: Pick<LogEntry, "clientId" | "clientSeq" | "txn">): DedupeEntry {
  if (entry.clientId === "" || entry.txn === undefined) return undefined;
  if (isRegistration(entry)) return { kind: "registration", clientId: entry.clientId };
  return { kind: "append", clientId: entry.clientId, clientSeq: entry.clientSeq };
}

/** The entry RegisterClient appends: the client's id, seq 0, a transaction without mutations. */
export function isRegistration(entry: Pick<LogEntry, "clientId" | "clientSeq" | "txn">): boolean {
  return entry.clientId !== "" && entry.clientSeq === 0n && entry.txn !== undefined && entry.txn.mutations.length === 0;
}

/** Only appends that name their client are deduplicated. */
export function isIdempotent(request: { readonly clientId: string }): boolean {
  return request.clientId !== "";
}

/** The key of an append in the in-flight maps (a seq has no "/", so the last one splits it). */
export function appendKey(clientId: string, seq: bigint): string {
  return `${clientId}/${seq}`;
}

/** The refusal for a seq older than the client's window: we cannot tell whether it is in the log. */
export function tooOldError(clientId: string, seq: bigint, oldestSeq: bigint): LpError {
  return failedPrecondition(`client_seq ${seq} of client "${clientId}" is older than the dedupe window (oldest kept ${oldestSeq})`);
}

/**
 * The refusal for an append in a session the LogStore no longer holds: it
 * cannot tell whether this seq is already in the log, and appending it again
 * could write the transaction twice. The reason SESSION_EXPIRED lets a client
 * tell it from other FAILED_PRECONDITIONs.
 */
export function sessionExpiredError(clientId: string, seq: bigint, sessionLsn: bigint): LpError {
  const session = sessionLsn === 0n ? "its session (opened by its first append, without registration)" : `session ${sessionLsn}`;
  return new LpError(
    Status.FAILED_PRECONDITION,
    `client "${clientId}" has no live session matching ${session}: it was evicted, expired or never opened, so client_seq ${seq} ` +
      "cannot be deduplicated and was not appended; whether an earlier attempt of it is in the log is unknown (LookupAppend tells); " +
      "register (RegisterClient) for new appends" +
      (sessionLsn === 0n ? ", or use a client id whose session never ended" : ""),
    { reason: ErrorReason.sessionExpired },
  );
}
