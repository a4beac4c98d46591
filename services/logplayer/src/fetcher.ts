import { assert, LpError, Status, type Logger } from "@logplayer/common";
import { PROTOCOL_VERSION, type LogEntry, type ReadResponse } from "@logplayer/proto";
import { traceEntriesReceived } from "./hop-trace-points";
import type { LogReader, ReadCall } from "./ports";

/**
 * The paper's Fetcher, as transport only: one main stream tailing the log
 * and bounded recovery reads, each a plain LogStore.Read call. When to open,
 * resume, queue or cancel them is the LogPlayer core's decision; these
 * classes run the calls and report what arrives, synchronously on 'data'.
 */

/**
 * The LogStore replicas, named by their index in the configured order. Any
 * replica serves committed entries (up to what it knows is committed); a
 * lagging follower only delays delivery, it can never hand out an
 * uncommitted entry. The main stream reads from the replica the core chose
 * (the leader when known); recovery reads go to the current one, which
 * follows the main stream, and move on to the next after a failure.
 */
export class LogStorePool<Client extends LogReader = LogReader> {
  #index = 0;

  constructor(private readonly replicas: readonly { readonly address: string; readonly client: Client }[]) {
    assert(replicas.length >= 1, "at least one LogStore address");
  }

  get current(): Client {
    return this.replicas[this.#index]!.client;
  }

  get currentAddress(): string {
    return this.replicas[this.#index]!.address;
  }

  get count(): number {
    return this.replicas.length;
  }

  client(replica: number): Client {
    const entry = this.replicas[replica];
    assert(entry !== undefined, `LogStore replica ${replica} out of range [0, ${this.replicas.length})`);
    return entry.client;
  }

  address(replica: number): string {
    return this.replicas[replica]?.address ?? "?";
  }

  /** The replica configured at `address` (as the replicas' --peers spell it), or null. */
  indexOf(address: string): number | null {
    if (address === "") return null;
    const index = this.replicas.findIndex((replica) => replica.address === address);
    return index === -1 ? null : index;
  }

  /** Later calls on the current replica go to `replica` (where the main stream now reads). */
  use(replica: number): void {
    assert(replica >= 0 && replica < this.replicas.length, `LogStore replica ${replica} out of range`);
    this.#index = replica;
  }

  /** Every replica's client, in the configured order. */
  get clients(): Client[] {
    return this.replicas.map((replica) => replica.client);
  }

  /** A call on `client` failed: the next call goes to the next replica (unless another call already moved on). */
  failed(client: Client): void {
    if (client === this.current) this.#index = (this.#index + 1) % this.replicas.length;
  }

  close(): void {
    for (const replica of this.replicas) replica.client.close();
  }
}

export interface MainStreamEvents {
  /**
   * Consecutive entries and the LogStore's commit LSN when it sent them, and
   * the leader as the serving replica named it: its index, or null when it
   * named none this pool knows (or is a LogStore that does not say).
   */
  entries(entries: readonly LogEntry[], commitLsn: bigint, leader: number | null): void;
  /** The call failed or ended (a tailing read never ends by itself). */
  failed(reason: string): void;
}

/** The main stream's call: Read(fromLsn, tail) on the replica the core chose. */
export class MainStream {
  #call: ReadCall | null = null;
  #replica = 0;
  /** Why the last call ended, for the log line when the core schedules the resume. */
  #lastError: LpError | null = null;
  #closed = false;

  constructor(
    private readonly pool: LogStorePool,
    private readonly readerId: string,
    private readonly events: MainStreamEvents,
    private readonly logger: Logger,
  ) {}

  open(fromLsn: bigint, replica: number): void {
    assert(this.#call === null && !this.#closed, "main stream already running");
    const client = this.pool.client(replica);
    this.pool.use(replica);
    this.#replica = replica;
    this.logger.info({ fromLsn: fromLsn.toString(), logstore: this.pool.address(replica) }, "main stream starting");
    const call = client.read({ protocolVersion: PROTOCOL_VERSION, fromLsn, toLsn: 0n, readerId: this.readerId });
    this.#call = call;
    this.#lastError = null;
    call.on("data", (response: ReadResponse) => {
      if (call !== this.#call || response.entries.length === 0) return;
      traceEntriesReceived(response.entries);
      const leader = response.fromLeader ? replica : this.pool.indexOf(response.leaderAddress);
      this.events.entries(response.entries, response.commitLsn, leader);
    });
    call.on("error", (err: Error) => this.#failed(call, client, LpError.from(err)));
    call.on("end", () => this.#failed(call, client, new LpError(Status.UNAVAILABLE, "LogStore ended the tailing read")));
  }

  /** The core moves a working stream to the leader: the old call ends, the new one starts at once. */
  move(fromLsn: bigint, replica: number): void {
    const call = this.#call;
    this.#call = null;
    if (call !== null) cancelQuietly(call);
    this.logger.info({ from: this.pool.address(this.#replica), to: this.pool.address(replica) }, "main stream moving to the leader");
    this.open(fromLsn, replica);
  }

  /** The core closed the stream (it failed, or sent something unusable); it reopens it in `resumeInMs`. */
  stop(reason: string, resumeInMs: number): void {
    const call = this.#call;
    this.#call = null;
    if (call !== null) cancelQuietly(call);
    const error = this.#lastError ?? new LpError(Status.INTERNAL, reason);
    this.#lastError = null;
    if (isTrimmed(error)) {
      this.logger.error(
        { code: Status[error.code], err: error.message, retryInMs: resumeInMs },
        "main stream needs entries the LogStore has trimmed: a shard behind the log's first LSN cannot be served from the log; " +
          "restore that shard from a backup (delivery to the others waits too while the main stream starts below the trim)",
      );
      return;
    }
    this.logger.warn({ code: Status[error.code], err: error.message, retryInMs: resumeInMs }, "main stream failed; resuming");
  }

  close(): void {
    this.#closed = true;
    const call = this.#call;
    this.#call = null;
    if (call !== null) cancelQuietly(call);
  }

  #failed(call: ReadCall, client: LogReader, error: LpError): void {
    if (call !== this.#call) return;
    this.pool.failed(client);
    this.#call = null;
    this.#lastError = error;
    cancelQuietly(call);
    if (!this.#closed) this.events.failed(error.message);
  }
}

export interface RecoveryEvents {
  entries(readId: number, entries: readonly LogEntry[]): void;
  done(readId: number): void;
  failed(readId: number): void;
}

/** Recovery reads: bounded Read(fromLsn, toLsn) calls, started and cancelled by the core, named by its read ids. */
export class RecoveryReads {
  readonly #calls = new Map<number, ReadCall>();
  #closed = false;

  constructor(
    private readonly pool: LogStorePool,
    private readonly readerId: string,
    private readonly events: RecoveryEvents,
    private readonly logger: Logger,
  ) {}

  get running(): number {
    return this.#calls.size;
  }

  start(readId: number, target: number, fromLsn: bigint, toLsn: bigint): void {
    if (this.#closed) return;
    assert(!this.#calls.has(readId), `recovery read ${readId} started twice`);
    const client = this.pool.current;
    const call = client.read({ protocolVersion: PROTOCOL_VERSION, fromLsn, toLsn, readerId: `${this.readerId}/recovery-${target}` });
    this.#calls.set(readId, call);
    const current = (): boolean => this.#calls.get(readId) === call;
    call.on("data", (response: ReadResponse) => {
      if (current()) this.events.entries(readId, response.entries);
    });
    call.on("error", (err: Error) => {
      if (!current()) return;
      this.pool.failed(client);
      this.#forget(readId);
      const error = LpError.from(err);
      if (isTrimmed(error)) {
        this.logger.error(
          { target, code: Status[error.code], err: error.message },
          `shard ${target} needs entries the LogStore has trimmed: it cannot be served from the log; restore it from a backup`,
        );
      } else {
        this.logger.warn({ target, code: Status[error.code], err: error.message }, "recovery read failed");
      }
      this.events.failed(readId);
    });
    call.on("end", () => {
      if (!current()) return;
      this.#forget(readId);
      this.events.done(readId);
    });
  }

  cancel(readId: number): void {
    this.#forget(readId);
  }

  close(): void {
    this.#closed = true;
    for (const readId of [...this.#calls.keys()]) this.#forget(readId);
  }

  #forget(readId: number): void {
    const call = this.#calls.get(readId);
    if (call === undefined) return;
    this.#calls.delete(readId);
    cancelQuietly(call);
  }
}

/** A Read refused because its start was trimmed from the log (not the to_lsn-beyond-commit kind of OUT_OF_RANGE). */
function isTrimmed(error: LpError): boolean {
  return error.code === Status.OUT_OF_RANGE && error.message.includes("was trimmed");
}

function cancelQuietly(call: ReadCall): void {
  call.removeAllListeners();
  call.on("error", () => undefined); // CANCELLED is expected; nobody listens any more
  call.cancel();
}
