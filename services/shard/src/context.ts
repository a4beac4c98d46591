import type { CallerSlots, Logger, LpError, LsnWaiters, TransactionLimits } from "@logplayer/common";
import type { DeliverRequest, DeliverResponse } from "@logplayer/proto";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import type { ShardBackups } from "./backups";
import type { DeliveryStats } from "./delivery-stats";
import type { ShardMetrics } from "./shard-metrics";
import type { ShardStore } from "./store";

/** Every limit the shard enforces, each a flag (see main.ts). */
export interface ShardLimits {
  /** Parts in one PartBatch. */
  readonly batchPartsMax: number;
  /** Deliver streams open at once (two LogPlayers need two). */
  readonly deliveryStreamsMax: number;
  /** Deliver streams of one caller (its certificate's identity), so one caller cannot take them all. */
  readonly deliveryStreamsPerCallerMax: number;
  /** Get/Scan calls waiting for applied_lsn >= min_lsn at once. */
  readonly readWaitersMax: number;
  /** Waiting reads of one caller. */
  readonly readWaitersPerCallerMax: number;
  /** Longest a read waits for min_lsn, whatever the call deadline. */
  readonly readWaitMsMax: number;
  /** Items in one Scan response. */
  readonly scanItemsMax: number;
  /** Approximate key + value bytes in one Scan response. */
  readonly scanBytesMax: number;
  /** gRPC messages, both directions. */
  readonly messageBytesMax: number;
  /** Key and mutation limits for delivered parts and read keys. */
  readonly transaction: TransactionLimits;
}

export type DeliverCall = ServerDuplexStream<DeliverRequest, DeliverResponse>;

/** Counters reported by Status since the process started. */
export interface ShardCounts {
  partsApplied: bigint;
  partsDuplicate: bigint;
  gaps: bigint;
}

/** The state the gRPC handlers share: one per shard process. */
export interface ShardContext {
  readonly store: ShardStore;
  readonly limits: ShardLimits;
  readonly logger: Logger;
  readonly metrics: ShardMetrics;
  readonly stats: DeliveryStats;
  /** Reads waiting for the applied LSN; advanced after every commit. */
  readonly waiters: LsnWaiters;
  readonly counts: ShardCounts;
  /** Open Deliver streams, each with the function that ends it. */
  readonly streams: Map<DeliverCall, (error?: LpError) => void>;
  /** Waiting reads, each with the function that fails it (used at shutdown). */
  readonly pendingReads: Set<(error: LpError) => void>;
  /** Who a call is from, for the per-caller limits: the certificate's identity (the peer's host when insecure). */
  readonly callerOf: (call: { getPeer(): string; getAuthContext(): { sslPeerCertificate?: { raw: Buffer } } | null }) => string;
  readonly deliverySlots: CallerSlots;
  readonly readWaiterSlots: CallerSlots;
  readonly backups: ShardBackups;
  /** Why the last hello was refused because the log was trimmed past this shard; null once a hello passes. */
  logUnreachable: string | null;
}
