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

/**
 * `work`, or a CancelledError as soon as `signal` fires (the work itself goes on: use this only where it
 * cannot be cancelled, and where its outcome is then the caller's to find out, as after a deadline).
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined, context: string): Promise<T> {
  if (signal === undefined) return work;
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      work.catch(() => undefined);
      reject(abortedError(signal, context));
      return;
    }
    const onAbort = (): void => reject(abortedError(signal, context));
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}
