import { status as Status } from "@grpc/grpc-js";
import { CancelledError } from "./errors";

/*
 * AbortSignal support shared by every call: an aborted call ends with a
 * CancelledError whose cause is the signal's reason.
 */

export function abortedError(signal: AbortSignal, context: string): CancelledError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : reason === undefined ? "aborted" : String(reason);
  return new CancelledError(Status.CANCELLED, `${context}: aborted by the caller's signal (${why})`, { cause: reason });
}

export function throwIfAborted(signal: AbortSignal | undefined, context: string): void {
  if (signal?.aborted) throw abortedError(signal, context);
}

/** Waits `ms`, or rejects with the abort as soon as `signal` fires. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined, context: string): Promise<void> {
  if (signal === undefined) return new Promise((resolve) => setTimeout(resolve, ms));
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortedError(signal, context));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortedError(signal, context));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
