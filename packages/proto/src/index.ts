// The one entry point to the generated code. Explicit names only (no export *),
// so a reader sees what the wire protocol offers.
export {
  MutationKind,
  Mutation,
  Transaction,
  ShardMap,
  LogEntry,
  KeyValue,
} from "./gen/logplayer/v1/types";
export {
  AppendRequest,
  AppendResponse,
  ReadRequest,
  ReadResponse,
  StatusRequest,
  StatusResponse,
  ReplicaStatus,
  LogStoreService,
  LogStoreClient,
} from "./gen/logplayer/v1/logstore";
export type { LogStoreServer } from "./gen/logplayer/v1/logstore";
export {
  RaftMessageType,
  RaftEntry,
  RaftMessage,
  StepRequest,
  StepResponse,
  ReplicationService,
  ReplicationClient,
} from "./gen/logplayer/v1/replication";
export type { ReplicationServer } from "./gen/logplayer/v1/replication";
export {
  DeliverHello,
  Part,
  PartBatch,
  DeliverRequest,
  DeliverResponse,
  HelloReply,
  Ack,
  Gap,
  GetRequest,
  GetResponse,
  ScanRequest,
  ScanResponse,
  ShardStatusRequest,
  ShardStatusResponse,
  DeliveryStatsRequest,
  DeliveryStatsResponse,
  ShardService,
  ShardClient,
} from "./gen/logplayer/v1/shard";
export type { ShardServer } from "./gen/logplayer/v1/shard";

/**
 * Version of the delivery and read protocols. A peer that sends another
 * version is refused with FAILED_PRECONDITION, naming both versions.
 */
export const PROTOCOL_VERSION = 1;
