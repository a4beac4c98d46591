import type { Role } from "./identity";

/** Who may call what: full gRPC method path → the roles allowed. A method not listed is refused to everyone. */
export type MethodPolicy = ReadonlyMap<string, readonly Role[]>;

const READERS: readonly Role[] = ["client", "reader", "admin"];
const HEALTH_CALLERS: readonly Role[] = ["logstore-replica", "logplayer", "shard", "client", "reader", "admin"];

/**
 * The cluster's policy. Why each row:
 * - Append writes the log: writers only (client, admin).
 * - RegisterClient opens a client session for idempotent appends: writers only.
 * - LookupAppend says where a (client id, seq) stands: a read.
 * - Read tails the committed log: the LogPlayer needs it; readers may watch it.
 * - Step and StepStream are Raft: replicas only, and the adapter also checks
 *   that the certificate's replica id is every message's sender.
 * - Probe tells a blank replica whether its cluster exists: replicas only.
 * - InstallSnapshot streams a leader's snapshot to a follower: replicas only.
 * - Deliver feeds a shard: LogPlayers only — a forged delivery would freeze the shard.
 * - GetOutcome says whether a shard applied or rejected a part: a read.
 * - Backup hands out a copy of a shard's whole database: admin only.
 * - AddMember / RemoveMember change the LogStore's replicas: admin only.
 * - Status and health tell nothing secret and every component asks them.
 */
export const CLUSTER_POLICY: MethodPolicy = new Map<string, readonly Role[]>([
  ["/logplayer.v1.LogStore/Append", ["client", "admin"]],
  ["/logplayer.v1.LogStore/AppendStream", ["client", "admin"]],
  ["/logplayer.v1.LogStore/Read", ["logplayer", ...READERS]],
  ["/logplayer.v1.LogStore/Status", HEALTH_CALLERS],
  ["/logplayer.v1.LogStore/RegisterClient", ["client", "admin"]],
  ["/logplayer.v1.LogStore/LookupAppend", READERS],
  // Only a LogPlayer gathers every shard's restorable LSN; a trim point from anyone else could give up entries a shard needs.
  ["/logplayer.v1.LogStore/ReportTrimPoint", ["logplayer"]],
  // Adding or removing a replica changes who may vote and store the log: admin only. The list is a read.
  ["/logplayer.v1.LogStore/AddMember", ["admin"]],
  ["/logplayer.v1.LogStore/RemoveMember", ["admin"]],
  ["/logplayer.v1.LogStore/ListMembers", READERS],
  ["/logplayer.v1.Replication/Step", ["logstore-replica"]],
  ["/logplayer.v1.Replication/StepStream", ["logstore-replica"]],
  ["/logplayer.v1.Replication/Probe", ["logstore-replica"]],
  ["/logplayer.v1.Replication/InstallSnapshot", ["logstore-replica"]],
  ["/logplayer.v1.Shard/Deliver", ["logplayer"]],
  ["/logplayer.v1.Shard/Get", READERS],
  ["/logplayer.v1.Shard/Scan", READERS],
  ["/logplayer.v1.Shard/Status", HEALTH_CALLERS],
  ["/logplayer.v1.Shard/DeliveryStats", ["logplayer", "admin"]],
  ["/logplayer.v1.Shard/GetOutcome", READERS],
  ["/logplayer.v1.Shard/Backup", ["admin"]],
  ["/grpc.health.v1.Health/Check", HEALTH_CALLERS],
  ["/grpc.health.v1.Health/Watch", HEALTH_CALLERS],
]);
