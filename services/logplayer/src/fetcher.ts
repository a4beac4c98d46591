import type { ClientReadableStream } from "@grpc/grpc-js";
import { assert, Backoff, LpError, Status, type BackoffConfig, type Logger } from "@logplayer/common";
import { PROTOCOL_VERSION, type LogEntry, type LogStoreClient, type ReadResponse } from "@logplayer/proto";

/**
 * The paper's Fetcher: one main stream tailing the log for the player's
 * whole life, plus bounded recovery reads for targets that missed entries.
 * Both are plain LogStore.Read calls; everything they deliver goes straight
 * to the Dispatcher through the callbacks, synchronously on 'data'.
 */

/**
 * The LogStore replicas. Any replica serves committed entries (up to what it
 * knows is committed), so reads go to the current one and move on to the
 * next after a failure. A lagging follower only delays delivery; it can
 * never hand out an uncommitted entry.
 */
export class LogStorePool {
  #index = 0;

  constructor(private readonly replicas: readonly { readonly address: string; readonly client: LogStoreClient }[]) {
    assert(replicas.length >= 1, "at least one LogStore address");
  }

  get current(): LogStoreClient {
    return this.replicas[this.#index]!.client;
  }

  get currentAddress(): string {
    return this.replicas[this.#index]!.address;
  }

  /** A call on `client` failed: the next call goes to the next replica (unless another call already moved on). */
  failed(client: LogStoreClient): void {
    if (client === this.current) this.#index = (this.#index + 1) % this.replicas.length;
  }

  close(): void {
    for (const replica of this.replicas) replica.client.close();
  }
}

export interface MainStreamEvents {
  /** Consecutive entries and the LogStore's commit LSN when it sent them; the handler dispatches them. */
  entries(entries: readonly LogEntry[], commitLsn: bigint): void;
  /** Where to resume after a failure (currentIndex + 1). */
  resumeFromLsn(): bigint;
}

export class MainStream {
  #call: ClientReadableStream<ReadResponse> | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #backoff: Backoff;

  constructor(
    private readonly pool: LogStorePool,
    private readonly readerId: string,
    backoff: BackoffConfig,
    private readonly events: MainStreamEvents,
    private readonly logger: Logger,
    private readonly onRestart: () => void,
  ) {
    this.#backoff = new Backoff(backoff);
  }

  start(fromLsn: bigint): void {
    assert(this.#call === null && !this.#closed, "main stream already running");
    const client = this.pool.current;
    this.logger.info({ fromLsn: fromLsn.toString(), logstore: this.pool.currentAddress }, "main stream starting");
    const call = client.read({ protocolVersion: PROTOCOL_VERSION, fromLsn, toLsn: 0n, readerId: this.readerId });
    this.#call = call;
    call.on("data", (response: ReadResponse) => {
      if (call !== this.#call) return;
      this.#backoff.reset();
      if (response.entries.length > 0) this.events.entries(response.entries, response.commitLsn);
    });
    call.on("error", (err: Error) => {
      this.pool.failed(client);
      this.#failed(call, LpError.from(err));
    });
    call.on("end", () => {
      this.pool.failed(client);
      this.#failed(call, new LpError(Status.UNAVAILABLE, "LogStore ended the tailing read"));
    });
  }

  /** The stream delivered something unusable (e.g. an LSN jump): drop it and resume. */
  restart(reason: string): void {
    const call = this.#call;
    if (call !== null) this.#failed(call, new LpError(Status.INTERNAL, reason));
  }

  close(): void {
    this.#closed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const call = this.#call;
    this.#call = null;
    if (call !== null) cancelQuietly(call);
  }

  #failed(call: ClientReadableStream<ReadResponse>, error: LpError): void {
    if (call !== this.#call) return;
    this.#call = null;
    cancelQuietly(call);
    if (this.#closed) return;
    const delayMs = this.#backoff.nextDelayMs();
    this.logger.warn({ code: Status[error.code], err: error.message, retryInMs: delayMs }, "main stream failed; resuming");
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#closed) return;
      this.onRestart();
      this.start(this.events.resumeFromLsn());
    }, delayMs);
  }
}

/** One bounded recovery read: [fromLsn, toLsn] for one target in one term. */
export interface RecoveryRequest {
  readonly target: number;
  readonly term: number;
  readonly fromLsn: bigint;
  readonly toLsn: bigint;
  readonly retry: boolean;
}

export interface RecoveryEvents {
  /** Returns false when the read is no longer wanted (its term expired): the read is cancelled. */
  entries(request: RecoveryRequest, entries: readonly LogEntry[]): boolean;
  done(request: RecoveryRequest): void;
  failed(request: RecoveryRequest): void;
}

/**
 * Recovery reads, at most `streamsMax` at once; others wait in FIFO order
 * (at most one per target, since each target has one chunk in flight).
 * Retries wait a per-target capped, jittered backoff first.
 */
export class RecoveryReads {
  #active = 0;
  readonly #waiting: RecoveryRequest[] = [];
  readonly #calls = new Set<ClientReadableStream<ReadResponse>>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #backoffs = new Map<number, Backoff>();
  #closed = false;

  constructor(
    private readonly pool: LogStorePool,
    private readonly readerId: string,
    private readonly streamsMax: number,
    private readonly backoff: BackoffConfig,
    private readonly events: RecoveryEvents,
    private readonly logger: Logger,
    private readonly onStart: (target: number) => void,
  ) {
    assert(streamsMax >= 1, "recoveryStreamsMax must be at least 1");
  }

  request(request: RecoveryRequest): void {
    if (this.#closed) return;
    if (!request.retry) {
      this.#enqueue(request);
      return;
    }
    const delayMs = this.#backoffFor(request.target).nextDelayMs();
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#enqueue(request);
    }, delayMs);
    this.#timers.add(timer);
  }

  close(): void {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#waiting.length = 0;
    for (const call of this.#calls) cancelQuietly(call);
    this.#calls.clear();
  }

  #enqueue(request: RecoveryRequest): void {
    if (this.#closed) return;
    if (this.#active < this.streamsMax) this.#run(request);
    else this.#waiting.push(request);
  }

  #run(request: RecoveryRequest): void {
    this.#active += 1;
    this.onStart(request.target);
    const client = this.pool.current;
    const call = client.read({
      protocolVersion: PROTOCOL_VERSION,
      fromLsn: request.fromLsn,
      toLsn: request.toLsn,
      readerId: `${this.readerId}/recovery-${request.target}`,
    });
    this.#calls.add(call);
    let settled = false;
    const settle = (outcome: "done" | "failed" | "cancelled", error?: LpError): void => {
      if (settled) return;
      settled = true;
      this.#calls.delete(call);
      this.#active -= 1;
      if (outcome !== "done") cancelQuietly(call);
      if (outcome === "done") {
        this.#backoffFor(request.target).reset();
        this.events.done(request);
      } else if (outcome === "failed") {
        this.logger.warn({ target: request.target, code: error ? Status[error.code] : undefined, err: error?.message }, "recovery read failed");
        this.events.failed(request);
      }
      const next = this.#waiting.shift();
      if (next !== undefined && !this.#closed) this.#run(next);
    };
    call.on("data", (response: ReadResponse) => {
      if (settled) return;
      if (!this.events.entries(request, response.entries)) settle("cancelled");
    });
    call.on("error", (err: Error) => {
      this.pool.failed(client);
      settle("failed", LpError.from(err));
    });
    call.on("end", () => settle("done"));
  }

  #backoffFor(target: number): Backoff {
    let backoff = this.#backoffs.get(target);
    if (backoff === undefined) {
      backoff = new Backoff(this.backoff);
      this.#backoffs.set(target, backoff);
    }
    return backoff;
  }
}

function cancelQuietly(call: ClientReadableStream<ReadResponse>): void {
  call.removeAllListeners();
  call.on("error", () => undefined); // CANCELLED is expected; nobody listens any more
  call.cancel();
}
