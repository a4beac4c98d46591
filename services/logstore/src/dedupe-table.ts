import { assert, failedPrecondition, type LpError } from "@logplayer/common";

/** Bounds of the dedupe table. */
export interface DedupeLimits {
  /** Clients remembered; the least recently written is forgotten first. */
  readonly clientsMax: number;
  /** Sequence numbers remembered per client (a client has at most this many appends in flight). */
  readonly seqsPerClientMax: number;
}

export const DEFAULT_DEDUPE_LIMITS: DedupeLimits = { clientsMax: 100_000, seqsPerClientMax: 1024 };

export type DedupeVerdict =
  | { readonly kind: "new" }
  | { readonly kind: "duplicate"; readonly lsn: bigint }
  /** Older than the window kept for this client: we cannot tell, so we refuse rather than risk a second copy. */
  | { readonly kind: "too-old"; readonly oldestSeq: bigint };

interface ClientWindow {
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
}

/**
 * Idempotent appends: (clientId, clientSeq) -> LSN for COMMITTED entries,
 * rebuilt from the log on start; the log state machine adds the appends
 * still in flight (replication/log-state-machine.ts). Bounded: the `clientsMax` most recently
 * active clients, and per client the last `seqsPerClientMax` sequence
 * numbers (a client has at most that many appends in flight). Pure.
 */
export class DedupeTable {
  readonly #clientsMax: number;
  readonly #seqsPerClientMax: number;
  /** Map order = least recently written client first. */
  readonly #clients = new Map<string, ClientWindow>();
  /** The most recently written client, already last in #clients: no need to move it again. */
  #newestClient: ClientWindow | null = null;

  constructor(limits: DedupeLimits) {
    assert(limits.clientsMax >= 1 && limits.seqsPerClientMax >= 1, "dedupe limits must be positive");
    this.#clientsMax = limits.clientsMax;
    this.#seqsPerClientMax = limits.seqsPerClientMax;
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  lookup(clientId: string, seq: bigint): DedupeVerdict {
    const window = this.#clients.get(clientId);
    if (window === undefined) return { kind: "new" };
    const lsn = window.seqs.get(seq);
    if (lsn !== undefined) return { kind: "duplicate", lsn };
    if (seq <= window.evictedSeqMax) return { kind: "too-old", oldestSeq: window.evictedSeqMax + 1n };
    return { kind: "new" };
  }

  /** Records a committed entry. A (client, seq) already present keeps its first LSN. */
  record(clientId: string, seq: bigint, lsn: bigint): void {
    assert(clientId !== "", "dedupe: record without a client id");
    let window = this.#clients.get(clientId);
    if (window === undefined) {
      window = { seqs: new Map(), order: [], head: 0, evictedSeqMax: 0n };
      this.#clients.set(clientId, window);
    } else if (window !== this.#newestClient) {
      this.#clients.delete(clientId);
      this.#clients.set(clientId, window);
    }
    this.#newestClient = window;
    if (window.seqs.has(seq)) return;
    window.seqs.set(seq, lsn);
    if (window.order.length < this.#seqsPerClientMax) {
      window.order.push(seq);
    } else {
      // Full ring: the slot of the oldest seq takes the new one.
      const oldest = window.order[window.head]!;
      assert(window.seqs.delete(oldest), "dedupe: ring and map disagree");
      if (oldest > window.evictedSeqMax) window.evictedSeqMax = oldest;
      window.order[window.head] = seq;
      window.head = (window.head + 1) % this.#seqsPerClientMax;
    }
    assert(window.seqs.size <= this.#seqsPerClientMax, "dedupe: window over its bound");
    while (this.#clients.size > this.#clientsMax) {
      const [oldestClient] = this.#clients.keys();
      assert(oldestClient !== undefined, "dedupe: empty table over its bound");
      this.#clients.delete(oldestClient);
    }
  }
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
