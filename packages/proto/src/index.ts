// The one entry point to the generated code. Explicit names only (no export *),
// so a reader sees what the wire protocol offers.
export {
  MutationKind,
  Mutation,
  Transaction,
  ShardMap,
  LogEntry,
  KeyValue,
  // Same fields as @logplayer/base's TransactionLimits, which services use; this is the wire message.
  TransactionLimits as TransactionLimitsMessage,
} from "./gen/logplayer/v1/types";
export {
  AppendRequest,
  AppendResponse,
  AppendStreamResponse,
  AppendAnswer,
  ReadRequest,
  ReadResponse,
  StatusRequest,
  StatusResponse,
  ReplicaStatus,
  RegisterClientRequest,
  RegisterClientResponse,
  LookupAppendRequest,
  LookupAppendResponse,
  ReportTrimPointRequest,
  ReportTrimPointResponse,
  AddMemberRequest,
  RemoveMemberRequest,
  ListMembersRequest,
  Member,
  MembersResponse,
  LookupAppendState,
} from "./gen/logplayer/v1/logstore";
export type { LogStoreServer } from "./gen/logplayer/v1/logstore";
export {
  RaftMessageType,
  RaftEntry,
  RaftMessage,
  StepRequest,
  StepResponse,
  ProbeRequest,
  ProbeResponse,
  ReplicaStartState,
  ReplicationService,
  ReplicationClient,
  SnapshotChunk,
  InstallSnapshotResponse,
  LogStoreSnapshotState,
  DedupeSessionState,
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
  BackupRequest,
  BackupManifest,
  BackupChunk,
  DeliveryStatsRequest,
  DeliveryStatsResponse,
  GetOutcomeRequest,
  GetOutcomeResponse,
  PartOutcome,
} from "./gen/logplayer/v1/shard";
export type { ShardServer } from "./gen/logplayer/v1/shard";
// Service definitions and clients: the generated ones with the hand-written
// codec on the delivery path (wire/codec.ts), same bytes on the wire.
export { LogStoreService, LogStoreClient, ShardService, ShardClient } from "./wire/services";
export {
  transactionEncodedBytes,
  encodeLogEntry,
  decodeLogEntry,
  encodeAppendRequest,
  decodeAppendRequest,
  encodeReadResponse,
  decodeReadResponse,
  encodeDeliverRequest,
  decodeDeliverRequest,
  encodeAppendStreamResponse,
  decodeAppendStreamResponse,
  encodeDeliverResponse,
  decodeDeliverResponse,
} from "./wire/codec";

/**
 * Version of the delivery and read protocols. A peer that sends another
 * version is refused with FAILED_PRECONDITION, naming both versions.
 */
export const PROTOCOL_VERSION = 1;
