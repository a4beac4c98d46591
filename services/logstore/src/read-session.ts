import type { ServerWritableStream } from "@grpc/grpc-js";
import { assert, failedPrecondition, invalidArgument, LpError, Status, type Logger } from "@logplayer/common";
import { PROTOCOL_VERSION, type LogEntry, type ReadRequest, type ReadResponse } from "@logplayer/proto";
import type { LogStoreNode } from "./server";

export interface ReadLimits {
  /** Payload bytes per ReadResponse (a single larger entry still goes alone). */
  readBatchBytesMax: number;
  readBatchEntriesMax: number;
  /** Concurrent Read streams. */
  readersMax: number;
  /** Concurrent Read streams of one caller (its certificate's identity), so one caller cannot take them all. */
  readersPerCallerMax: number;
}

export const DEFAULT_READ_LIMITS: ReadLimits = {
  readBatchBytesMax: 256 * 1024,
  readBatchEntriesMax: 1024,
  readersMax: 64,
  readersPerCallerMax: 32,
};

type StopReason = LpError | "cancelled";

/**
 * One Read stream: sends committed entries from from_lsn in batches, honours
 * flow control (one wait for 'drain' whenever write() says the buffer is
 * full), and when caught up on a tailing read (to_lsn = 0) sleeps until the
 * next commit. It never polls: every wait is woken by an event (commit,
 * drain, cancel, stop).
 */
export class ReadSession {
  readonly #call: ServerWritableStream<ReadRequest, ReadResponse>;
  readonly #node: LogStoreNode;
  readonly #logger: Logger;
  #stopped: StopReason | null = null;
  /** Wakes the current wait early (cancel or stop). */
  #wake: (() => void) | null = null;

  constructor(call: ServerWritableStream<ReadRequest, ReadResponse>, node: LogStoreNode, logger: Logger) {
    this.#call = call;
    this.#node = node;
    this.#logger = logger;
    call.on("cancelled", () => this.stop("cancelled"));
  }

  /** Ends the stream with `error` before it started. */
  refuse(error: LpError): void {
    this.#call.emit("error", error.toServiceError());
  }

  /** Ends the stream at the next wait (with `reason` sent to the reader unless it cancelled). */
  stop(reason: StopReason): void {
    if (this.#stopped !== null) return;
    this.#stopped = reason;
    this.#wake?.();
  }

  async run(): Promise<void> {
    const { request } = this.#call;
    try {
      const range = this.#checkRequest(request);
      this.#logger.debug({ readerId: request.readerId, fromLsn: range.fromLsn, toLsn: range.toLsn }, "read stream opened");
      await this.#stream(range.fromLsn, range.toLsn);
    } catch (err: unknown) {
      this.stop(LpError.from(err));
      // Operating errors were sent to the reader; anything else is a bug for the caller to report.
      if (!LpError.is(err)) throw err;
    } finally {
      this.#finish(request.readerId);
    }
  }

  #finish(readerId: string): void {
    const reason = this.#stopped;
    this.#logger.debug({ readerId, cancelled: reason === "cancelled" }, "read stream closed");
    if (reason === "cancelled") return;
    if (reason === null) {
      this.#call.end();
    } else {
      this.#logger.debug({ readerId, code: reason.code, err: reason.message }, "read stream ended with an error");
      this.#call.emit("error", reason.toServiceError());
    }
  }

  #checkRequest(request: ReadRequest): { fromLsn: bigint; toLsn: bigint } {
    if (request.protocolVersion !== PROTOCOL_VERSION) {
      throw failedPrecondition(
        `protocol version ${request.protocolVersion} is not supported; this LogStore speaks version ${PROTOCOL_VERSION}`,
      );
    }
    const fromLsn = request.fromLsn === 0n ? 1n : request.fromLsn;
    const toLsn = request.toLsn;
    const commitLsn = this.#node.commitLsn;
    if (fromLsn < this.#node.wal.firstLsn) throw this.#trimmedError(fromLsn);
    if (toLsn > 0n && toLsn > commitLsn) {
      throw new LpError(Status.OUT_OF_RANGE, `to_lsn ${toLsn} is beyond the commit LSN ${commitLsn}`);
    }
    if (toLsn > 0n && fromLsn > toLsn) throw invalidArgument(`from_lsn ${fromLsn} is after to_lsn ${toLsn}`);
    return { fromLsn, toLsn };
  }

  /** Sends [fromLsn, toLsn] (toLsn 0: forever). Returns when done or stopped. */
  async #stream(fromLsn: bigint, toLsn: bigint): Promise<void> {
    const { readBatchBytesMax, readBatchEntriesMax } = this.#node.readLimits;
    let nextLsn = fromLsn;
    while (this.#stopped === null) {
      const commitLsn = this.#node.commitLsn;
      const limitLsn = toLsn > 0n ? toLsn : commitLsn;
      assert(limitLsn <= commitLsn, `read limit ${limitLsn} beyond commit ${commitLsn}`);
      if (nextLsn > limitLsn) {
        if (toLsn > 0n) return;
        await this.#sleep((wake) => this.#node.waitForCommit(nextLsn, wake));
        continue;
      }
      const entries = await this.#readCommitted(nextLsn, limitLsn, readBatchBytesMax, readBatchEntriesMax);
      assert(entries.length > 0 && entries[0]!.lsn === nextLsn, `read of committed LSN ${nextLsn} returned nothing`);
      if (this.#stopped !== null) return;
      const lastLsn = entries[entries.length - 1]!.lsn;
      assert(lastLsn <= limitLsn, `read returned LSN ${lastLsn} beyond ${limitLsn}`);
      const bufferHasRoom = this.#call.write({ entries, commitLsn: this.#node.commitLsn, ...this.#node.leaderView() });
      this.#node.countEntriesRead(entries.length);
      nextLsn = lastLsn + 1n;
      if (!bufferHasRoom) {
        this.#logger.debug({ readerId: this.#call.request.readerId, nextLsn: nextLsn.toString() }, "read stream waiting for drain");
        await this.#sleep((wake) => this.#onceDrain(wake));
      }
    }
  }

  /** A read of committed entries; a reader overtaken by trimming (before or during the read) gets OUT_OF_RANGE. */
  async #readCommitted(fromLsn: bigint, toLsn: bigint, bytesMax: number, entriesMax: number): Promise<LogEntry[]> {
    if (fromLsn < this.#node.wal.firstLsn) throw this.#trimmedError(fromLsn);
    try {
      return await this.#node.wal.readRange(fromLsn, toLsn, bytesMax, entriesMax);
    } catch (err: unknown) {
      if (fromLsn < this.#node.wal.firstLsn) throw this.#trimmedError(fromLsn);
      throw err;
    }
  }

  #trimmedError(lsn: bigint): LpError {
    const firstLsn = this.#node.wal.firstLsn;
    return new LpError(Status.OUT_OF_RANGE, `LSN ${lsn} was trimmed; the log starts at ${firstLsn} (first_lsn ${firstLsn})`);
  }

  #onceDrain(wake: () => void): () => void {
    this.#call.once("drain", wake);
    return () => this.#call.removeListener("drain", wake);
  }

  /**
   * Waits for the event `register` subscribes to, or for stop/cancel.
   * `register` returns an unsubscribe function and may call wake at once.
   */
  #sleep(register: (wake: () => void) => () => void): Promise<void> {
    assert(this.#wake === null, "read session is already waiting");
    return new Promise<void>((resolve) => {
      let done = false;
      let unregister: (() => void) | null = null;
      const wake = (): void => {
        if (done) return;
        done = true;
        this.#wake = null;
        unregister?.();
        resolve();
      };
      this.#wake = wake;
      unregister = register(wake);
      if (done) unregister();
      if (this.#stopped !== null) wake();
    });
  }
}
