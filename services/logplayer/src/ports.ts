import type { DeliverRequest, DeliverResponse, ReadRequest, ReadResponse } from "@logplayer/proto";

/*
 * The LogPlayer's transport and time, as small ports. The gRPC
 * implementations are grpc-js itself (a ShardClient and a LogStoreClient
 * satisfy these shapes) and Node's timers; packages/sim implements them over
 * its simulated network and clock, and drives the same adapter classes.
 */

/** One Shard.Deliver call: requests out, responses in (grpc-js's ClientDuplexStream is one). */
export interface DeliverCall {
  /** Returns false when the buffer is full; then 'drain' follows. `written` runs once the request left. */
  write(request: DeliverRequest, written: () => void): boolean;
  on(event: "data", listener: (response: DeliverResponse) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  once(event: "drain", listener: () => void): unknown;
  removeAllListeners(): unknown;
  /** Ends the call; the peer sees it cancelled. */
  cancel(): void;
}

/** Opens Deliver calls to one shard. */
export interface ShardConnector {
  deliver(): DeliverCall;
  close(): void;
}

/** One LogStore.Read call (grpc-js's ClientReadableStream is one). */
export interface ReadCall {
  on(event: "data", listener: (response: ReadResponse) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "end", listener: () => void): unknown;
  removeAllListeners(): unknown;
  cancel(): void;
}

/** Opens Read calls on one LogStore replica. */
export interface LogReader {
  read(request: ReadRequest): ReadCall;
  close(): void;
}

/**
 * The LogStore's commit LSN, asked for when a shard reports more than the
 * LogPlayer knows is committed. Calls back once: with the highest commit LSN
 * any replica reported, or null when none answered. (A callback, not a
 * promise: the simulator runs without a microtask turn between its events.)
 */
export interface CommitLsnSource {
  commitLsn(done: (commitLsn: bigint | null) => void): void;
}

/** An armed timer, as the clock's owner knows it. */
export type TimerHandle = unknown;

/** Time for the adapters: a monotonic clock and one-shot timers. */
export interface PlayerClock {
  /** Milliseconds on a monotonic clock (any origin); the core's deadlines are on it. */
  nowMs(): number;
  /** Nanoseconds on the clock shared with the shards (dispatch times, for the delay measures). */
  nowNs(): bigint;
  setTimer(delayMs: number, fire: () => void): TimerHandle;
  clearTimer(timer: TimerHandle): void;
}
