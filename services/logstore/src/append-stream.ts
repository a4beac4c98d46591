import type { ServerDuplexStream } from "@grpc/grpc-js";
import { invalidArgument, LpError, type Logger } from "@logplayer/common";
import type { AppendAnswer, AppendRequest, AppendResponse, AppendStreamResponse } from "@logplayer/proto";

/** Appends in flight on one AppendStream before the LogStore stops reading it (flow control pushes back). */
export const DEFAULT_APPEND_STREAM_PENDING_MAX = 1024;

export interface AppendStreamHooks {
  append(request: AppendRequest): Promise<AppendResponse>;
  /** Counts one answered append (the same metric as unary Append). */
  onAnswer(outcome: "ok" | "duplicate" | LpError, startedNs: bigint): void;
  /** An error that is not an operating error: a bug the caller reports. */
  onUnexpected(err: unknown): void;
}

/**
 * One AppendStream: pipelined appends from one client. Each request goes
 * through the same LogStoreNode.append as a unary Append and is answered by
 * its client_seq, refusals included, so one bad transaction does not end the
 * stream. Pending appends are bounded: past `pendingMax` the stream is paused
 * (HTTP/2 flow control then holds the client back) until answers drain it.
 * Answers ready in one turn of the event loop (a group commit resolves many
 * at once) go out as one response: one gRPC message instead of one each.
 */
export class AppendStreamSession {
  readonly #call: ServerDuplexStream<AppendRequest, AppendStreamResponse>;
  readonly #hooks: AppendStreamHooks;
  readonly #pendingMax: number;
  readonly #logger: Logger;
  #clientId: string | null = null;
  #pending = 0;
  #paused = false;
  #inputEnded = false;
  #closed = false;
  #ready: AppendAnswer[] = [];
  #flushScheduled = false;

  constructor(call: ServerDuplexStream<AppendRequest, AppendStreamResponse>, hooks: AppendStreamHooks, pendingMax: number, logger: Logger) {
    this.#call = call;
    this.#hooks = hooks;
    this.#pendingMax = pendingMax;
    this.#logger = logger;
  }

  start(): void {
    const call = this.#call;
    call.on("data", (request: AppendRequest) => this.#onRequest(request));
    call.on("end", () => {
      this.#inputEnded = true;
      this.#maybeFinish();
    });
    call.on("cancelled", () => {
      this.#closed = true;
    });
    call.on("error", (err: Error) => {
      this.#closed = true;
      this.#logger.debug({ err: err.message }, "append stream broke");
    });
  }

  /** Ends the stream with `error` (the LogStore shuts down); answers still pending are dropped. */
  stop(error: LpError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#call.emit("error", error.toServiceError());
  }

  #onRequest(request: AppendRequest): void {
    if (this.#closed) return;
    const problem = this.#checkRequest(request);
    if (problem !== null) {
      this.stop(problem);
      return;
    }
    const startedNs = process.hrtime.bigint();
    const clientSeq = request.clientSeq;
    this.#pending += 1;
    if (this.#pending >= this.#pendingMax && !this.#paused) {
      this.#paused = true;
      this.#call.pause();
    }
    let answer: Promise<AppendAnswer>;
    try {
      answer = this.#hooks.append(request).then(
        (response): AppendAnswer => {
          this.#hooks.onAnswer(response.duplicate ? "duplicate" : "ok", startedNs);
          return {
            clientSeq,
            lsn: response.lsn,
            duplicate: response.duplicate,
            errorCode: 0,
            errorMessage: "",
            leaderAddress: "",
            errorReason: "",
          };
        },
        (err: unknown) => this.#refusal(clientSeq, err, startedNs),
      );
    } catch (err: unknown) {
      answer = Promise.resolve(this.#refusal(clientSeq, err, startedNs));
    }
    void answer.then((response) => this.#answer(response));
  }

  #refusal(clientSeq: bigint, err: unknown, startedNs: bigint): AppendAnswer {
    const error = LpError.from(err);
    this.#hooks.onAnswer(error, startedNs);
    this.#hooks.onUnexpected(err);
    return {
      clientSeq,
      lsn: 0n,
      duplicate: false,
      errorCode: error.code,
      errorMessage: error.message,
      leaderAddress: error.leaderAddress ?? "",
      errorReason: error.reason,
    };
  }

  #answer(answer: AppendAnswer): void {
    this.#pending -= 1;
    if (this.#closed) return;
    this.#ready.push(answer);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const answers = this.#ready;
    this.#ready = [];
    if (this.#closed) return;
    const response: AppendStreamResponse = { answers };
    this.#call.write(response);
    if (this.#paused && this.#pending < this.#pendingMax) {
      this.#paused = false;
      this.#call.resume();
    }
    this.#maybeFinish();
  }

  #checkRequest(request: AppendRequest): LpError | null {
    if (request.clientId === "" || request.clientSeq === 0n) {
      return invalidArgument("AppendStream: every append needs client_id and client_seq > 0 (use Append for others)");
    }
    if (this.#clientId === null) this.#clientId = request.clientId;
    else if (request.clientId !== this.#clientId) {
      return invalidArgument(
        `AppendStream: client_id ${JSON.stringify(request.clientId)} on a stream of ${JSON.stringify(this.#clientId)}`,
      );
    }
    return null;
  }

  #maybeFinish(): void {
    if (this.#inputEnded && this.#pending === 0 && this.#ready.length === 0 && !this.#closed) {
      this.#closed = true;
      this.#call.end();
    }
  }
}
