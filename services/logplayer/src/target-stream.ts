import type { ClientDuplexStream } from "@grpc/grpc-js";
import { Backoff, LpError, Status, type BackoffConfig, type Logger } from "@logplayer/common";
import {
  PROTOCOL_VERSION,
  type DeliverRequest,
  type DeliverResponse,
  type Part,
  type ShardClient,
  type ShardMap,
} from "@logplayer/proto";
import type { GapReport } from "@logplayer/delivery";

/** What a TargetStream reports; the LogPlayer forwards each to the Dispatcher. */
export interface TargetStreamEvents {
  /** HelloReply: returns the stream term to stamp on later events. */
  connected(target: number, appliedLsn: bigint): number;
  connectFailed(target: number): void;
  disconnected(target: number, streamTerm: number): void;
  ack(target: number, streamTerm: number, appliedLsn: bigint): void;
  gap(target: number, streamTerm: number, report: GapReport): void;
  writeCompleted(target: number, streamTerm: number, parts: readonly Part[]): void;
  /** Sent, unacknowledged batches right now (the health checker's question). */
  unackedBatches(target: number): number;
}

/** Counters the owner keeps (metrics); the stream only reports. */
export interface TargetStreamHooks {
  readonly onConnectAttempt: () => void;
  readonly onAckTimeout: () => void;
}

export interface TargetStreamConfig {
  readonly target: number;
  readonly address: string;
  readonly clusterId: string;
  readonly shardMap: ShardMap;
  readonly playerId: string;
  /** No Ack/Gap within this while batches are unacked (or no HelloReply): the target is dead. */
  readonly ackTimeoutMs: number;
  readonly backoff: BackoffConfig;
}

/**
 * One long-lived bidi Shard.Deliver stream: hello, then batches out and
 * Ack/Gap back. The write callback (plus 'drain' when write() returns false)
 * is the paper's completion-queue tag. Any failure closes the stream and is
 * reported once; reconnection waits for the core's "reconnect" command.
 */
export class TargetStream {
  #call: ClientDuplexStream<DeliverRequest, DeliverResponse> | null = null;
  #streamTerm = 0;
  #ackTimer: NodeJS.Timeout | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #lastErrorCode: Status | null = null;
  #closed = false;
  readonly #backoff: Backoff;

  constructor(
    private readonly config: TargetStreamConfig,
    private readonly client: ShardClient,
    private readonly events: TargetStreamEvents,
    private readonly logger: Logger,
    private readonly hooks: TargetStreamHooks,
  ) {
    this.#backoff = new Backoff(config.backoff);
  }

  get connected(): boolean {
    return this.#streamTerm !== 0;
  }

  /** Opens the stream now (first connect) — later ones go through scheduleReconnect. */
  open(): void {
    if (this.#closed || this.#call !== null) return;
    this.hooks.onConnectAttempt();
    const call = this.client.deliver();
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
        },
      },
    };
    call.write(hello);
    this.#armTimer(); // a HelloReply is due too
  }

  /** The core's "reconnect": wait a capped, jittered backoff, then open. */
  scheduleReconnect(): void {
    if (this.#closed || this.#reconnectTimer !== null || this.#call !== null) return;
    // A refused identity (wrong cluster, map or version) will not fix itself soon: retry slowly.
    const delayMs = this.#lastErrorCode === Status.FAILED_PRECONDITION ? this.config.backoff.maxDelayMs : this.#backoff.nextDelayMs();
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.open();
    }, delayMs);
  }

  /** Executes a "send" command: one PartBatch write, one completion report. */
  send(streamTerm: number, parts: Part[]): void {
    const call = this.#call;
    if (call === null || streamTerm !== this.#streamTerm) return; // the stream it was meant for is gone
    let pending = 1;
    const completed = (): void => {
      pending -= 1;
      if (pending === 0 && this.#call === call) this.events.writeCompleted(this.config.target, streamTerm, parts);
    };
    const flushed = call.write({ body: { $case: "batch", value: { parts } } }, completed);
    if (!flushed) {
      pending += 1;
      call.once("drain", completed);
    }
    if (this.#ackTimer === null) this.#armTimer();
  }

  close(): void {
    this.#closed = true;
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#clearTimer();
    const call = this.#call;
    this.#call = null;
    this.#streamTerm = 0;
    if (call !== null) {
      call.removeAllListeners();
      call.on("error", () => undefined); // the cancel below reports CANCELLED; nobody listens any more
      call.cancel();
    }
  }

  #onResponse(call: ClientDuplexStream<DeliverRequest, DeliverResponse>, response: DeliverResponse): void {
    if (call !== this.#call) return;
    const target = this.config.target;
    const body = response.body;
    if (body === undefined) return;
    if (body.$case === "hello") {
      if (this.#streamTerm !== 0 || body.value.shardId !== target) {
        this.#fail(call, new LpError(Status.INTERNAL, `unexpected HelloReply (shard id ${body.value.shardId}, expected ${target})`));
        return;
      }
      this.#clearTimer();
      this.#lastErrorCode = null;
      this.#streamTerm = this.events.connected(target, body.value.appliedLsn);
      this.logger.info({ target, appliedLsn: body.value.appliedLsn.toString(), streamTerm: this.#streamTerm }, "delivery stream connected");
      return;
    }
    if (this.#streamTerm === 0) {
      this.#fail(call, new LpError(Status.INTERNAL, `shard sent ${body.$case} before its HelloReply`));
      return;
    }
    this.#backoff.reset();
    if (body.$case === "ack") {
      this.events.ack(target, this.#streamTerm, body.value.appliedLsn);
    } else {
      this.events.gap(target, this.#streamTerm, body.value);
    }
    this.#clearTimer();
    if (this.events.unackedBatches(target) > 0) this.#armTimer();
  }

  /** Closes the current stream and reports it once: connectFailed before the hello, disconnected after. */
  #fail(call: ClientDuplexStream<DeliverRequest, DeliverResponse>, error: LpError): void {
    if (call !== this.#call) return;
    const streamTerm = this.#streamTerm;
    this.#call = null;
    this.#streamTerm = 0;
    this.#clearTimer();
    call.removeAllListeners();
    call.on("error", () => undefined);
    call.cancel();
    this.#lastErrorCode = error.code;
    const fields = { target: this.config.target, address: this.config.address, code: Status[error.code], err: error.message };
    if (error.code === Status.FAILED_PRECONDITION) this.logger.error(fields, "shard refused the delivery stream; retrying slowly");
    else this.logger.warn(fields, "delivery stream closed");
    if (streamTerm === 0) this.events.connectFailed(this.config.target);
    else this.events.disconnected(this.config.target, streamTerm);
  }

  #armTimer(): void {
    this.#clearTimer();
    const call = this.#call;
    this.#ackTimer = setTimeout(() => {
      this.#ackTimer = null;
      if (call === null || call !== this.#call) return;
      const waiting = this.#streamTerm === 0 ? "HelloReply" : "Ack";
      if (this.#streamTerm !== 0 && this.events.unackedBatches(this.config.target) === 0) return;
      this.hooks.onAckTimeout();
      this.#fail(call, new LpError(Status.DEADLINE_EXCEEDED, `no ${waiting} within ${this.config.ackTimeoutMs} ms`));
    }, this.config.ackTimeoutMs);
  }

  #clearTimer(): void {
    if (this.#ackTimer !== null) clearTimeout(this.#ackTimer);
    this.#ackTimer = null;
  }
}
