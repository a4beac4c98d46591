/**
 * A sampled per-hop trace for the benchmark's delay breakdown (issue 15):
 * each service stamps the moment a traced transaction passes one of its hops
 * into a bounded ring buffer, and `pnpm bench` reads the rings at the end
 * through the metrics port (`GET /debug/hop-trace`).
 *
 * Which transactions are traced: the client marks one in N by making its
 * commit_time_ns odd (and the others even), a 1 ns change to a time the log
 * carries anyway, so no field, RPC or proto changes. Services record only
 * when started with LP_HOP_TRACE=1 (the benchmark sets it); otherwise every
 * trace point is one boolean read (`hopTrace.enabled`).
 *
 * One clock: every time is CLOCK_MONOTONIC (process.hrtime.bigint(), the
 * same counter for every process of this machine), as the shards' delay
 * histograms already use.
 */
import { monotonicNs } from "./clock";

/** The hops in the order a transaction passes them. */
export const TRACE_HOPS = [
  /** The LogStore that got the append (the leader) read it off the wire. Keyed by commit_time_ns (no LSN yet). */
  "leader-received",
  /** The leader's own WAL made the entry durable (fsync). Keyed by LSN, as are the hops below. */
  "leader-durable",
  /** The leader learnt the entry is durable on a majority and applied it (the ack goes out now). */
  "committed",
  /** The LogPlayer got the entry from its main Read stream. */
  "player-received",
  /** The LogPlayer's dispatch time, as the part carries it (recorded by the shard). */
  "dispatched",
  /** The shard read the part off its Deliver stream. */
  "shard-received",
  /** The shard's SQLite transaction holding the part committed. */
  "sqlite-commit",
] as const;
export type TraceHop = (typeof TRACE_HOPS)[number];

/** Set to "1" in a service's environment to record. */
export const HOP_TRACE_ENV = "LP_HOP_TRACE";
/** Ring size in records (env LP_HOP_TRACE_CAPACITY); the oldest records are overwritten past it. */
export const HOP_TRACE_CAPACITY_ENV = "LP_HOP_TRACE_CAPACITY";
export const HOP_TRACE_CAPACITY_DEFAULT = 65_536;
const HOP_TRACE_CAPACITY_MAX = 4_194_304;

/** Whether the client marked this transaction for tracing. */
export function isTracedCommitTime(commitTimeNs: bigint): boolean {
  return (commitTimeNs & 1n) === 1n;
}

/** A client's commit time, marked traced (odd) or not (even). */
export function markCommitTime(commitTimeNs: bigint, traced: boolean): bigint {
  return traced ? commitTimeNs | 1n : commitTimeNs & ~1n;
}

/** What `GET /debug/hop-trace` returns: parallel arrays, oldest first (bigints as decimal strings). */
export interface HopTraceSnapshot {
  hops: TraceHop[];
  /** commit_time_ns for "leader-received", the LSN for every other hop. */
  keys: string[];
  atNs: string[];
  /** Records overwritten because the ring was full. */
  overwritten: number;
}

export class HopTrace {
  readonly enabled: boolean;
  readonly #hops: Uint8Array;
  readonly #keys: BigInt64Array;
  readonly #times: BigInt64Array;
  #written = 0;

  constructor(enabled: boolean, capacity: number) {
    this.enabled = enabled;
    const size = enabled ? capacity : 0;
    this.#hops = new Uint8Array(size);
    this.#keys = new BigInt64Array(size);
    this.#times = new BigInt64Array(size);
  }

  /** Records one hop (callers check `enabled` and the mark first). */
  record(hop: TraceHop, key: bigint, atNs: bigint = monotonicNs()): void {
    if (!this.enabled) return;
    const slot = this.#written % this.#hops.length;
    this.#hops[slot] = TRACE_HOPS.indexOf(hop);
    this.#keys[slot] = BigInt.asIntN(64, key);
    this.#times[slot] = BigInt.asIntN(64, atNs);
    this.#written += 1;
  }

  snapshot(): HopTraceSnapshot {
    const capacity = this.#hops.length;
    const count = Math.min(this.#written, capacity);
    const first = this.#written - count;
    const snapshot: HopTraceSnapshot = { hops: [], keys: [], atNs: [], overwritten: first };
    for (let i = first; i < this.#written; i++) {
      const slot = i % capacity;
      snapshot.hops.push(TRACE_HOPS[this.#hops[slot]!]!);
      snapshot.keys.push(BigInt.asUintN(64, this.#keys[slot]!).toString());
      snapshot.atNs.push(BigInt.asUintN(64, this.#times[slot]!).toString());
    }
    return snapshot;
  }
}

/**
 * Traced LSNs waiting for a watermark (a durable or commit LSN) to pass
 * them, for hops the service learns as "everything up to L", not per entry.
 * Bounded: past `capacity` the oldest is dropped (its hop goes unrecorded).
 */
export class PendingLsnTrace {
  readonly #pending: bigint[] = [];

  constructor(
    private readonly trace: HopTrace,
    private readonly hop: TraceHop,
    private readonly capacity = 4096,
  ) {}

  add(lsn: bigint): void {
    if (this.#pending.length >= this.capacity) this.#pending.shift();
    this.#pending.push(lsn);
  }

  /** Records the hop for every pending LSN at or below `upToLsn`. */
  reached(upToLsn: bigint): void {
    if (this.#pending.length === 0 || this.#pending[0]! > upToLsn) return;
    const atNs = monotonicNs();
    while (this.#pending.length > 0 && this.#pending[0]! <= upToLsn) this.trace.record(this.hop, this.#pending.shift()!, atNs);
  }
}

function capacityFromEnv(): number {
  const parsed = Number(process.env[HOP_TRACE_CAPACITY_ENV] ?? HOP_TRACE_CAPACITY_DEFAULT);
  return Number.isInteger(parsed) && parsed >= 1 && parsed <= HOP_TRACE_CAPACITY_MAX ? parsed : HOP_TRACE_CAPACITY_DEFAULT;
}

/**
 * This process's trace. A process-wide instance, so that a trace point is one
 * line in the code it observes and nothing is threaded through constructors.
 */
export const hopTrace = new HopTrace(process.env[HOP_TRACE_ENV] === "1", capacityFromEnv());
