import { assert } from "@logplayer/common";

export type DedupeVerdict =
  | { readonly kind: "new" }
  | { readonly kind: "duplicate"; readonly lsn: bigint }
  /** Older than the window kept for this client: we cannot tell, so we refuse rather than risk a second copy. */
  | { readonly kind: "too-old"; readonly oldestSeq: bigint };

interface ClientWindow {
  /** seq -> LSN, insertion order = commit order. */
  readonly seqs: Map<bigint, bigint>;
  /** Highest seq evicted from `seqs` (0 = none): anything at or below it and absent is unknown. */
  evictedSeqMax: bigint;
}

/**
 * Idempotent appends: (clientId, clientSeq) -> LSN for COMMITTED entries,
 * rebuilt from the log on start. Bounded: the `clientsMax` most recently
 * active clients, and per client the last `seqsPerClientMax` sequence
 * numbers (a client has at most that many appends in flight). Pure.
 */
export class DedupeTable {
  readonly #clientsMax: number;
  readonly #seqsPerClientMax: number;
  /** Map order = least recently written client first. */
  readonly #clients = new Map<string, ClientWindow>();

  constructor(clientsMax: number, seqsPerClientMax: number) {
    assert(clientsMax >= 1 && seqsPerClientMax >= 1, "dedupe limits must be positive");
    this.#clientsMax = clientsMax;
    this.#seqsPerClientMax = seqsPerClientMax;
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
      window = { seqs: new Map(), evictedSeqMax: 0n };
    } else {
      this.#clients.delete(clientId);
    }
    this.#clients.set(clientId, window);
    if (!window.seqs.has(seq)) window.seqs.set(seq, lsn);
    while (window.seqs.size > this.#seqsPerClientMax) {
      const [oldest] = window.seqs.keys();
      assert(oldest !== undefined, "dedupe: empty window over its bound");
      window.seqs.delete(oldest);
      if (oldest > window.evictedSeqMax) window.evictedSeqMax = oldest;
    }
    while (this.#clients.size > this.#clientsMax) {
      const [oldestClient] = this.#clients.keys();
      assert(oldestClient !== undefined, "dedupe: empty table over its bound");
      this.#clients.delete(oldestClient);
    }
  }
}
