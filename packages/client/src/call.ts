import {
  connectivityState as ConnectivityState,
  Metadata,
  status as Status,
  type CallOptions,
  type Client,
  type ClientUnaryCall,
  type ServiceError,
} from "@grpc/grpc-js";
import { Backoff, type BackoffConfig } from "@logplayer/common";
import { abortedError, raceAbort } from "./abort";
import { CancelledError, DeadlineExceededError, InternalError, UnavailableError, toClientError, type ClientError } from "./errors";

/** A generated client's unary method, called with the full (metadata, options, callback) form. */
export type UnaryMethod<Request, Response> = (
  request: Request,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response?: Response) => void,
) => ClientUnaryCall;

export interface CallTarget {
  /** Where the call goes, for error messages: "shard 2 at 127.0.0.1:7302". */
  readonly context: string;
  /** Absolute deadline, ms since the epoch (what grpc-js takes). */
  readonly deadlineMs: number;
  /**
   * Queue the call while the channel is (re)connecting instead of failing it
   * at once. The request is not sent before the connection is up, so this is
   * safe for appends too: it is how a commit rides through a restart.
   */
  readonly waitForReady: boolean;
  /** The client the call goes through, to say in a deadline error whether it ever connected. */
  readonly client?: Client;
  /** Cancels the call: it then fails with CancelledError. */
  readonly signal?: AbortSignal;
}

/** One unary call with an explicit deadline; errors come back typed. */
export function callUnary<Request, Response>(
  method: UnaryMethod<Request, Response>,
  request: Request,
  target: CallTarget,
): Promise<Response> {
  const { signal } = target;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortedError(signal, target.context));
      return;
    }
    const metadata = new Metadata({ waitForReady: target.waitForReady });
    const call = method(request, metadata, { deadline: target.deadlineMs }, (error, response) => {
      signal?.removeEventListener("abort", cancel);
      if (signal?.aborted) reject(abortedError(signal, target.context));
      else if (error) reject(describeFailure(error, target));
      else if (response === undefined) reject(new InternalError(Status.INTERNAL, `${target.context}: call ended without a response`));
      else resolve(response);
    });
    const cancel = (): void => call.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
  });
}

/**
 * With waitForReady a dead server shows up as DEADLINE_EXCEEDED, and grpc-js's
 * message ("Waiting for LB pick") hides why; say plainly that no connection came up.
 */
function describeFailure(error: ServiceError, target: CallTarget): ClientError {
  if (error.code !== Status.DEADLINE_EXCEEDED || target.client === undefined) return toClientError(error, target.context);
  return connectionWaitError(target.context, target.client, error) ?? toClientError(error, target.context);
}

/**
 * The deadline error for a call whose channel never connected ("is it
 * running?"); undefined when the channel is connected or idle, so the
 * deadline passed for another reason.
 */
export function connectionWaitError(context: string, client: Client, cause?: unknown): DeadlineExceededError | undefined {
  const state = client.getChannel().getConnectivityState(false);
  if (state === ConnectivityState.READY || state === ConnectivityState.IDLE) return undefined;
  return new DeadlineExceededError(
    Status.DEADLINE_EXCEEDED,
    `${context}: deadline exceeded waiting for a connection (channel ${ConnectivityState[state]}; is it running?)`,
    cause === undefined ? {} : { cause },
  );
}

export interface RetryPolicy {
  readonly backoff: BackoffConfig;
  /** Upper bound on attempts even when the deadline is far away. */
  readonly attemptsMax: number;
  /** Injected so tests (and a simulator) control time and randomness. */
  readonly nowMs: () => number;
  readonly sleepMs: (ms: number) => Promise<void>;
  readonly random: () => number;
}

/** Reads and commits share the retry loop; only what is worth retrying differs. */
export type ReadRetryPolicy = RetryPolicy;

/** What to do after a failed attempt: give up, retry after a backoff, or retry at once (a redirect). */
export type RetryDecision = "fail" | "backoff" | "now";

/** Only a plain UNAVAILABLE is worth retrying: the server is down or restarting. */
export function isRetryableRead(error: ClientError): boolean {
  return UnavailableError.is(error);
}

/**
 * Runs a read, retrying UNAVAILABLE with capped exponential backoff and full
 * jitter while the deadline allows. Reads have no side effects, so a retry
 * can never do harm.
 */
export function withReadRetry<T>(
  attempt: () => Promise<T>,
  deadlineMs: number,
  policy: ReadRetryPolicy,
  isCancelled: () => boolean,
  signal?: AbortSignal,
): Promise<T> {
  return withRetry(attempt, deadlineMs, policy, (error) => (isRetryableRead(error) ? "backoff" : "fail"), isCancelled, signal);
}

/**
 * The retry loop. After each failure `decide` says what to do (it may also
 * move the target, e.g. to a new leader). Gives up with the last error when
 * `decide` says "fail", when the next wait would pass the deadline, when
 * `attemptsMax` is reached, or when `isCancelled`. Never starts an attempt
 * past the deadline; the attempt itself carries the same absolute deadline,
 * i.e. whatever remains of it.
 */
export async function withRetry<T>(
  attempt: () => Promise<T>,
  deadlineMs: number,
  policy: RetryPolicy,
  decide: (error: ClientError) => RetryDecision,
  isCancelled: () => boolean,
  signal?: AbortSignal,
): Promise<T> {
  const backoff = new Backoff(policy.backoff, policy.random);
  for (let attempts = 1; ; attempts++) {
    try {
      return await attempt();
    } catch (err: unknown) {
      const error = toClientError(err);
      if (signal?.aborted) throw CancelledError.is(error) ? error : abortedError(signal, error.message);
      const decision = decide(error);
      if (decision === "fail" || attempts >= policy.attemptsMax || isCancelled()) throw error;
      const delayMs = decision === "now" ? 0 : backoff.nextDelayMs();
      if (policy.nowMs() + delayMs >= deadlineMs) throw error;
      if (delayMs > 0) await raceAbort(policy.sleepMs(delayMs), signal, error.message);
      if (isCancelled()) throw error;
    }
  }
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
