import { Metadata, status as Status, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import type { AppendAnswer as WireAnswer, AppendRequest, AppendStreamResponse, LogStoreClient } from "@logplayer/proto";
import { connectionWaitError } from "./call";
import {
  clientErrorFor,
  DeadlineExceededError,
  InternalError,
  UnavailableError,
  UnimplementedError,
  toClientError,
  type ClientError,
} from "./errors";

export interface AppendAnswer {
  readonly lsn: bigint;
  readonly duplicate: boolean;
}

interface Pending {
  readonly resolve: (answer: AppendAnswer) => void;
  readonly reject: (error: ClientError) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * One AppendStream to one LogStore address: appends are written as they
 * come (no per-call HTTP/2 stream, no per-call headers) and matched to
 * answers by client_seq. When the stream breaks, every pending append fails
 * with the stream's error and the commit's retry loop sends it again, with
 * the same seq, on a new stream or elsewhere. Pending appends are bounded by
 * the client's commit window.
 */
class OpenAppendStream {
  readonly #pending = new Map<bigint, Pending>();
  readonly #call: ClientDuplexStream<AppendRequest, AppendStreamResponse>;
  #ended = false;

  constructor(
    readonly address: string,
    readonly client: LogStoreClient,
    waitForReady: boolean,
    private readonly onEnd: (stream: OpenAppendStream, error: ClientError) => void,
  ) {
    this.#call = client.appendStream(new Metadata({ waitForReady }));
    this.#call.on("data", (response: AppendStreamResponse) => {
      for (const answer of response.answers) this.#onAnswer(answer);
    });
    this.#call.on("error", (err: ServiceError) => this.#end(toClientError(err, this.#context)));
    this.#call.on("end", () => this.#end(new UnavailableError(Status.UNAVAILABLE, `${this.#context}: append stream ended`)));
  }

  get #context(): string {
    return `LogStore at ${this.address}`;
  }

  get ended(): boolean {
    return this.#ended;
  }

  append(request: AppendRequest, deadlineMs: number): Promise<AppendAnswer> {
    const seq = request.clientSeq;
    if (this.#pending.has(seq)) {
      return Promise.reject(
        new InternalError(Status.INTERNAL, `${this.#context}: client_seq ${seq} is already pending on the append stream`),
      );
    }
    return new Promise<AppendAnswer>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.#pending.delete(seq);
          reject(this.#deadlineError());
        },
        Math.max(0, deadlineMs - Date.now()),
      );
      this.#pending.set(seq, { resolve, reject, timer });
      // write() returning false only means the HTTP/2 buffer is full; the commit window bounds what is buffered.
      this.#call.write(request);
    });
  }

  cancel(): void {
    this.#call.cancel();
  }

  #deadlineError(): ClientError {
    return (
      connectionWaitError(this.#context, this.client) ??
      new DeadlineExceededError(Status.DEADLINE_EXCEEDED, `${this.#context}: deadline exceeded`)
    );
  }

  #onAnswer(response: WireAnswer): void {
    const pending = this.#pending.get(response.clientSeq);
    // No one waits: the append timed out and its retry will get the original's answer.
    if (pending === undefined) return;
    this.#pending.delete(response.clientSeq);
    clearTimeout(pending.timer);
    if (response.errorCode !== Status.OK) {
      const leader = response.leaderAddress;
      pending.reject(
        clientErrorFor(response.errorCode, `${this.#context}: ${response.errorMessage}`, {
          reason: response.errorReason,
          ...(leader === "" ? {} : { leaderAddress: leader }),
        }),
      );
    } else if (response.lsn <= 0n) {
      pending.reject(new InternalError(Status.INTERNAL, `${this.#context}: append acknowledged with LSN ${response.lsn}`));
    } else {
      pending.resolve({ lsn: response.lsn, duplicate: response.duplicate });
    }
  }

  #end(error: ClientError): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#pending.clear();
    this.onEnd(this, error);
  }
}

/**
 * The client's AppendStreams, one per LogStore address, opened on first use
 * and again after a break. An address whose LogStore answers UNIMPLEMENTED
 * (an older LogStore) is remembered, and its appends go by unary Append.
 */
export class AppendStreams {
  readonly #streams = new Map<string, OpenAppendStream>();
  readonly #unaryOnly = new Set<string>();

  /** False when appends to `address` must use unary Append. */
  usable(address: string): boolean {
    return !this.#unaryOnly.has(address);
  }

  /**
   * Sends one append on the address's stream. Fails with the stream's error
   * when it breaks, UnimplementedError when the LogStore has no AppendStream
   * (after which `usable(address)` is false).
   */
  append(
    address: string,
    client: LogStoreClient,
    waitForReady: boolean,
    request: AppendRequest,
    deadlineMs: number,
  ): Promise<AppendAnswer> {
    let stream = this.#streams.get(address);
    if (stream === undefined || stream.ended || stream.client !== client) {
      stream = new OpenAppendStream(address, client, waitForReady, (ended, error) => this.#onEnd(ended, error));
      this.#streams.set(address, stream);
    }
    return stream.append(request, deadlineMs);
  }

  close(): void {
    for (const stream of this.#streams.values()) stream.cancel();
    this.#streams.clear();
  }

  #onEnd(stream: OpenAppendStream, error: ClientError): void {
    if (this.#streams.get(stream.address) === stream) this.#streams.delete(stream.address);
    if (UnimplementedError.is(error)) this.#unaryOnly.add(stream.address);
  }
}
