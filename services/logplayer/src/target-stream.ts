import { LpError, Status, type Logger, type TransactionLimits } from "@logplayer/common";
import { PROTOCOL_VERSION, type DeliverRequest, type DeliverResponse, type Part, type ShardMap } from "@logplayer/proto";
import type { GapReport } from "@logplayer/delivery";
import type { DeliverCall, ShardConnector } from "./ports";

/** What a TargetStream reports; the driver forwards each to the LogPlayer core. */
export interface TargetStreamEvents {
  /** The HelloReply; the driver answers with `established(streamTerm)`. */
  helloReply(target: number, appliedLsn: bigint): void;
  /** The stream broke: `streamTerm` is 0 before the HelloReply; `refused` when the shard refused our identity. */
  failed(target: number, streamTerm: number, refused: boolean): void;
  ack(target: number, streamTerm: number, appliedLsn: bigint): void;
  gap(target: number, streamTerm: number, report: GapReport): void;
  writeCompleted(target: number, streamTerm: number, parts: readonly Part[]): void;
}

export interface TargetStreamConfig {
  readonly target: number;
  readonly address: string;
  readonly clusterId: string;
  readonly shardMap: ShardMap;
  readonly playerId: string;
  /** The cluster's limits, as learned from the LogStore: the shard checks them against its own record. */
  readonly limits: TransactionLimits;
  /** The LogStore's first stored LSN as last learned (0 = unknown): a shard too far behind it refuses the stream. */
  readonly logFirstLsn: () => bigint;
}

/**
 * One long-lived bidi Shard.Deliver stream, as transport only: hello, then
 * batches out and Ack/Gap back. The write callback (plus 'drain' when
 * write() returns false) is the paper's completion-queue tag. A failure
 * closes the stream and is reported once; when to reconnect, and when a
 * silent stream is dead, is the core's decision.
 */
export class TargetStream {
  #call: DeliverCall | null = null;
  #streamTerm = 0;
  #closed = false;

  constructor(
    private readonly config: TargetStreamConfig,
    private readonly connector: ShardConnector,
    private readonly events: TargetStreamEvents,
    private readonly logger: Logger,
  ) {}

  /** Executes the core's "openStream": a new call and its hello, carrying the known commit LSN. */
  open(commitLsn: bigint): void {
    if (this.#closed || this.#call !== null) return;
    const call = this.connector.deliver();
    this.#call = call;
    this.#streamTerm = 0;
    call.on("data", (response: DeliverResponse) => this.#onResponse(call, response));
    call.on("error", (err: Error) => this.#fail(call, LpError.from(err)));
    call.on("end", () => this.#fail(call, new LpError(Status.UNAVAILABLE, "shard ended the delivery stream")));
    const hello: DeliverRequest = {
      body: {
        $case: "hello",
        value: {
          protocolVersion: PROTOCOL_VERSION,
          clusterId: this.config.clusterId,
          shardMap: this.config.shardMap,
          shardId: this.config.target,
          playerId: this.config.playerId,
          commitLsn,
          limits: this.config.limits,
          logFirstLsn: this.config.logFirstLsn(),
        },
      },
    };
    call.write(hello, () => undefined);
  }

  /** The core accepted the HelloReply: later events are stamped with `streamTerm`. */
  established(streamTerm: number, appliedLsn: bigint): void {
    this.#streamTerm = streamTerm;
    this.logger.info({ target: this.config.target, appliedLsn: appliedLsn.toString(), streamTerm }, "delivery stream connected");
  }

  /** Executes a "send" command: one PartBatch write, one completion report. */
  send(streamTerm: number, parts: Part[], commitLsn: bigint): void {
    const call = this.#call;
    if (call === null || streamTerm !== this.#streamTerm) return; // the stream it was meant for is gone
    let pending = 1;
    const completed = (): void => {
      pending -= 1;
      if (pending === 0 && this.#call === call) this.events.writeCompleted(this.config.target, streamTerm, parts);
    };
    const flushed = call.write({ body: { $case: "batch", value: { parts, commitLsn } } }, completed);
    if (!flushed) {
      pending += 1;
      call.once("drain", completed);
    }
  }

  /** Executes the core's "closeStream" (the health checker gave up on it): no report follows. */
  abandon(reason: string): void {
    const call = this.#call;
    if (call === null) return;
    this.#drop(call);
    const fields = { target: this.config.target, address: this.config.address, code: Status[Status.DEADLINE_EXCEEDED], err: reason };
    this.logger.warn(fields, "delivery stream closed");
  }

  close(): void {
    this.#closed = true;
    const call = this.#call;
    if (call !== null) this.#drop(call);
  }

  #onResponse(call: DeliverCall, response: DeliverResponse): void {
    if (call !== this.#call) return;
    const target = this.config.target;
    const body = response.body;
    if (body === undefined) return;
    if (body.$case === "hello") {
      if (this.#streamTerm !== 0 || body.value.shardId !== target) {
        this.#fail(call, new LpError(Status.INTERNAL, `unexpected HelloReply (shard id ${body.value.shardId}, expected ${target})`));
        return;
      }
      this.events.helloReply(target, body.value.appliedLsn);
      return;
    }
    if (this.#streamTerm === 0) {
      this.#fail(call, new LpError(Status.INTERNAL, `shard sent ${body.$case} before its HelloReply`));
      return;
    }
    if (body.$case === "ack") this.events.ack(target, this.#streamTerm, body.value.appliedLsn);
    else this.events.gap(target, this.#streamTerm, body.value);
  }

  /** Closes the current stream and reports it once. */
  #fail(call: DeliverCall, error: LpError): void {
    if (call !== this.#call) return;
    const streamTerm = this.#streamTerm;
    this.#drop(call);
    const refused = error.code === Status.FAILED_PRECONDITION;
    const fields = { target: this.config.target, address: this.config.address, code: Status[error.code], err: error.message };
    if (refused) this.logger.error(fields, "shard refused the delivery stream; retrying slowly");
    else this.logger.warn(fields, "delivery stream closed");
    this.events.failed(this.config.target, streamTerm, refused);
  }

  #drop(call: DeliverCall): void {
    this.#call = null;
    this.#streamTerm = 0;
    call.removeAllListeners();
    call.on("error", () => undefined); // the cancel reports CANCELLED; nobody listens any more
    call.cancel();
  }
}
