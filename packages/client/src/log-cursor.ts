import { MutationKind, type LogEntry, type Mutation } from "@logplayer/proto";

/*
 * The pure part of reading the log: which entries of a Read batch are new,
 * and which mutations of an entry a watch reports. No I/O, so the rules that
 * make a resumed read neither skip nor repeat an LSN are tested alone.
 */

/** One committed log entry, as `readLog` yields it. */
export interface LogRecord {
  readonly lsn: bigint;
  /** The Raft term that wrote it. */
  readonly term: bigint;
  /** Empty for the LogStore's own entries (a client registration, a leader's first entry). */
  readonly mutations: readonly Mutation[];
  /** The committing client's monotonic clock (ns) when it sent the append; 0 when unknown. */
  readonly commitTimeNs: bigint;
  /** Who appended it ("" for the LogStore's own entries) and their sequence number. */
  readonly clientId: string;
  readonly clientSeq: bigint;
}

/** One committed transaction's mutations on keys with the watched prefix (`watch`). Resume after it with fromLsn = lsn + 1n. */
export interface WatchEvent {
  readonly lsn: bigint;
  /** Only the mutations whose key starts with the prefix, in transaction order; never empty. */
  readonly mutations: readonly Mutation[];
}

/** A Read answer that skipped an LSN: the stream is not to be trusted, read again from `expected`. */
export class LogGapError extends Error {
  override readonly name = "LogGapError";
  constructor(
    readonly expected: bigint,
    readonly received: bigint,
  ) {
    super(`the LogStore sent LSN ${received} when ${expected} was next`);
  }
}

/**
 * Where a read stands: the next LSN to hand out. A batch may repeat entries
 * already handed out (a read resumed on another replica starts where asked,
 * but a replica's answers are checked anyway); a batch that skips one is
 * refused with LogGapError.
 */
export class LsnCursor {
  #next: bigint;

  constructor(fromLsn: bigint) {
    this.#next = fromLsn < 1n ? 1n : fromLsn;
  }

  /** The LSN the next entry must have, and where a resumed Read starts. */
  get next(): bigint {
    return this.#next;
  }

  /** Accepts `entry` when it is the next one (advancing), false when it was already handed out. */
  accept(entry: { readonly lsn: bigint }): boolean {
    if (entry.lsn < this.#next) return false;
    if (entry.lsn > this.#next) throw new LogGapError(this.#next, entry.lsn);
    this.#next += 1n;
    return true;
  }
}

export function toLogRecord(entry: LogEntry): LogRecord {
  return {
    lsn: entry.lsn,
    term: entry.term,
    mutations: entry.txn?.mutations ?? [],
    commitTimeNs: entry.commitTimeNs,
    clientId: entry.clientId,
    clientSeq: entry.clientSeq,
  };
}

/** The entry's mutations on keys starting with `prefix`, or undefined when it has none. */
export function watchEventOf(record: LogRecord, prefix: string): WatchEvent | undefined {
  const mutations = record.mutations.filter((m) => m.key.startsWith(prefix));
  return mutations.length === 0 ? undefined : { lsn: record.lsn, mutations };
}

const KIND_NAMES: Readonly<Record<number, string>> = {
  [MutationKind.MUTATION_KIND_PUT]: "put",
  [MutationKind.MUTATION_KIND_APPEND]: "append",
  [MutationKind.MUTATION_KIND_ADD]: "add",
  [MutationKind.MUTATION_KIND_DELETE]: "delete",
};

/** "put", "append", "add", "delete" (or "kind-N" for a kind this client does not know). */
export function mutationKindName(kind: MutationKind): string {
  return KIND_NAMES[kind] ?? `kind-${kind}`;
}
