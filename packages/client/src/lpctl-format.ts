import { describeShardMap, describeTransactionLimits, sameTransactionLimits } from "@logplayer/common";
import {
  MutationKind,
  type MembersResponse,
  type Mutation,
  type ReplicaStatus,
  type ShardStatusResponse,
  type StatusResponse,
} from "@logplayer/proto";
import type { ClusterStatus, MemberReport, ShardStatusReport } from "./client";
import { mutationKindName, type LogRecord } from "./log-cursor";
import type { ClientError } from "./errors";
import type { ScanItem } from "./scan-merge";

/*
 * How lpctl prints results, as pure functions from values to text so they
 * can be tested without a cluster. Human output is one fact per line; --json
 * output is one JSON document per command with LSNs as decimal strings
 * (JSON numbers cannot hold 64 bits).
 */

export function formatValue(value: Buffer, hex: boolean): string {
  return hex ? value.toString("hex") : value.toString("utf8");
}

/** JSON.stringify with bigints as decimal strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

export function errorJson(error: ClientError): { code: string; message: string } {
  return { code: error.codeName, message: error.message };
}

export function formatScanLines(items: readonly ScanItem[], hex: boolean): string {
  return items.map((item) => `${item.key}\t${formatValue(item.value, hex)}\n`).join("");
}

function shardLine(shard: ShardStatusReport, logStore: StatusResponse): string {
  const head = `shard ${shard.shardId}  ${shard.address}`;
  if (shard.status === undefined) {
    return `${head}  error ${shard.error?.codeName ?? "UNKNOWN"}: ${shard.error?.message ?? "no answer"}`;
  }
  const s = shard.status;
  const fields = [
    `applied_lsn=${s.appliedLsn}`,
    `durable_lsn=${s.durableLsn}`,
    `restorable_lsn=${s.restorableLsn}`,
    `lag=${shard.lag ?? "?"}`,
    `newest_backup_lsn=${s.newestBackupLsn}`,
    `parts_applied=${s.partsApplied}`,
    `parts_duplicate=${s.partsDuplicate}`,
    `gaps=${s.gaps}`,
    `delivery_streams=${s.deliveryStreams}`,
  ];
  const problems = [
    ...misplacement(shard.shardId, s, logStore.clusterId),
    ...aheadOfLog(s.appliedLsn, logStore),
    ...shardTrouble(s, logStore),
  ];
  const warnings = problems.map((problem) => `WARNING: ${problem}`);
  return [head, ...fields, ...warnings].join("  ");
}

/**
 * A shard that applied more than the log holds: the log lost acknowledged
 * entries (or the shard's data is from another log), and the LogPlayer has
 * stopped delivering to it. Only the leader's commit LSN says so: a follower
 * may not know the latest commit yet (the shards are asked first, so the
 * leader's commit LSN, read after, covers every applied LSN of a sound log).
 */
function aheadOfLog(appliedLsn: bigint, logStore: StatusResponse): string[] {
  if (logStore.role !== "leader" || appliedLsn <= logStore.commitLsn) return [];
  return [`has applied LSN ${appliedLsn}, ahead of the log's commit LSN ${logStore.commitLsn}: the log lost entries the shard applied`];
}

/** How a shard that answered is not the one listed: another shard id, another cluster. */
function misplacement(listedShardId: number, answer: { shardId: number; clusterId: string }, clusterId: string): string[] {
  return [
    ...(answer.shardId === listedShardId ? [] : [`says it is shard ${answer.shardId}`]),
    ...(answer.clusterId === clusterId ? [] : [`belongs to cluster ${JSON.stringify(answer.clusterId)}`]),
  ];
}

/** A shard that answers but cannot apply: its disk is full, or it recorded other limits than the LogStore's. */
function shardTrouble(answer: ShardStatusResponse, logStore: StatusResponse): string[] {
  const limitsDiffer =
    answer.limits !== undefined && logStore.limits !== undefined && !sameTransactionLimits(answer.limits, logStore.limits);
  return [
    ...(answer.diskFull === "" ? [] : [answer.diskFull]),
    ...(answer.logUnreachable === "" ? [] : [answer.logUnreachable]),
    ...(limitsDiffer ? [`recorded other limits (${describeTransactionLimits(answer.limits!)}) than the LogStore's`] : []),
  ];
}

/**
 * One replica as the answering replica sees it, printing only what it knows:
 * everything about itself; a follower's match LSN and lag when it leads (not
 * the follower's commit LSN, which Status leaves at 0); only the role of the
 * others when it follows. Printing those zeros read as "commit_lsn=0" on
 * healthy followers.
 */
function replicaLine(r: ReplicaStatus, answering: StatusResponse): string {
  const head = `  replica ${r.replicaId} ${r.address}  role=${r.role}`;
  if (r.replicaId === answering.replicaId) {
    return `${head} term=${r.term} last_lsn=${r.lastLsn} commit_lsn=${r.commitLsn}  (answering)`;
  }
  if (answering.role === "leader" && r.role === "follower") return `${head} match_lsn=${r.matchLsn} lag=${r.lag}`;
  return head;
}

export function formatClusterStatus(status: ClusterStatus): string {
  const ls = status.logStore;
  const map = ls.shardMap === undefined ? "(none)" : describeShardMap(ls.shardMap);
  const lines = [
    `logstore ${status.logStoreAddress}  role=${ls.role} term=${ls.term} commit_lsn=${ls.commitLsn} first_lsn=${ls.firstLsn} last_lsn=${ls.lastLsn}` +
      (ls.leaderAddress === "" ? "" : ` leader=${ls.leaderAddress}`),
    `  storage  trim_point=${ls.trimPoint} snapshot_lsn=${ls.snapshotLsn} wal_bytes=${ls.walBytes}`,
    ...(ls.voters.length === 0 ? [] : [`  members  voters=${ls.voters.join(",")} learners=${ls.learners.join(",") || "-"}`]),
    ...ls.replicas.map((r) => replicaLine(r, ls)),
    `cluster ${ls.clusterId}  shard_map=${map}  protocol_version=${ls.protocolVersion}` +
      (ls.limits === undefined ? "" : `  limits: ${describeTransactionLimits(ls.limits)}`),
    ...status.shards.map((shard) => shardLine(shard, ls)),
  ];
  return `${lines.join("\n")}\n`;
}

export function clusterStatusJson(status: ClusterStatus): Record<string, unknown> {
  return {
    logStoreAddress: status.logStoreAddress,
    logStore: status.logStore,
    shards: status.shards.map((shard) =>
      shard.status === undefined
        ? { shardId: shard.shardId, address: shard.address, error: shard.error === undefined ? null : errorJson(shard.error) }
        : { shardId: shard.shardId, address: shard.address, lag: shard.lag, status: shard.status },
    ),
  };
}

/** Bounds of `lpctl status`'s verdict. */
export interface HealthBounds {
  /** A shard more entries behind the log's commit LSN than this is unhealthy (default: no bound). */
  lagMax?: bigint;
}

/**
 * Why the cluster is not healthy, one line each; empty when it is. A script
 * gates on `lpctl status` with this: the answering replica must know a
 * leader, every replica must answer as leader or follower, and every shard
 * must answer, be the shard it is listed as, belong to this cluster, not be
 * ahead of the leader's commit LSN, be within `lagMax` of it, and, when
 * behind, have a LogPlayer's delivery stream open.
 */
export function clusterProblems(status: ClusterStatus, health: HealthBounds = {}): string[] {
  const ls = status.logStore;
  const problems: string[] = [];
  if (ls.role !== "leader" && ls.leaderAddress === "")
    problems.push(`logstore ${status.logStoreAddress} knows no leader (role ${ls.role})`);
  for (const member of status.members ?? []) {
    if (member.self === undefined) {
      problems.push(`logstore replica ${member.replicaId} at ${member.address} does not answer (${member.error?.codeName ?? "UNKNOWN"})`);
    } else if (member.self.role !== "leader" && member.self.role !== "follower" && member.self.role !== "learner") {
      problems.push(`logstore replica ${member.replicaId} at ${member.address} is ${member.self.role}`);
    }
  }
  for (const shard of status.shards) {
    if (shard.status === undefined) {
      problems.push(`shard ${shard.shardId} at ${shard.address} does not answer (${shard.error?.codeName ?? "UNKNOWN"})`);
      continue;
    }
    const behind =
      health.lagMax !== undefined && shard.lag !== undefined && shard.lag > health.lagMax
        ? [`is ${shard.lag} entries behind the log's commit LSN (more than ${health.lagMax})`]
        : [];
    // A shard behind with no delivery stream open waits for a LogPlayer that is down or stuck on it.
    const undelivered = shard.status.deliveryStreams === 0 && (shard.lag ?? 0n) > 0n ? ["has no delivery stream open and is behind"] : [];
    const trouble = [...aheadOfLog(shard.status.appliedLsn, ls), ...shardTrouble(shard.status, ls), ...behind, ...undelivered];
    for (const problem of [...misplacement(shard.shardId, shard.status, ls.clusterId), ...trouble]) {
      problems.push(`shard ${shard.shardId} at ${shard.address} ${problem}`);
    }
  }
  return problems;
}

/** `lpctl members`: one line per replica, with what it says of itself and what the leader says of it. */
export function formatMembers(members: readonly MemberReport[]): string {
  return members.map((m) => `${memberLine(m)}\n`).join("");
}

function memberLine(m: MemberReport): string {
  const head = `replica ${m.replicaId}  ${m.address}`;
  if (m.self === undefined) return `${head}  down (${m.error?.codeName ?? "UNKNOWN"}: ${m.error?.message ?? "no answer"})`;
  const s = m.self;
  const fields = [`role=${s.role}`, `term=${s.term}`, `last_lsn=${s.lastLsn}`, `commit_lsn=${s.commitLsn}`];
  if (m.matchLsn !== undefined) fields.push(`match_lsn=${m.matchLsn}`, `lag=${m.lag ?? "?"}`);
  return [head, ...fields].join("  ");
}

/** The answer of `lpctl members add|remove`: what was done, then the membership the leader has now. */
export function formatMembersAnswer(done: string, answer: MembersResponse): string {
  const lines = answer.members.map((m) => `replica ${m.replicaId}  ${m.address}  ${m.learner ? "learner" : "voter"}\n`);
  return `${done} (leader ${answer.leaderId}, commit_lsn ${answer.commitLsn})\n${lines.join("")}`;
}

export function membersAnswerJson(answer: MembersResponse): Record<string, unknown> {
  return {
    leaderId: answer.leaderId,
    commitLsn: answer.commitLsn,
    members: answer.members.map((m) => ({ replicaId: m.replicaId, address: m.address, role: m.learner ? "learner" : "voter" })),
  };
}

export function membersJson(members: readonly MemberReport[]): Record<string, unknown>[] {
  return members.map((m) => ({
    replicaId: m.replicaId,
    address: m.address,
    up: m.self !== undefined,
    ...(m.self === undefined ? {} : m.self),
    ...(m.error === undefined ? {} : { error: errorJson(m.error) }),
    ...(m.matchLsn === undefined ? {} : { matchLsn: m.matchLsn, lag: m.lag }),
  }));
}

/** A mutation on one line: `put "key" "value"`, `add "key" -3`, `delete "key"` (keys and values JSON-quoted, or hex). */
export function formatMutation(m: Mutation, hex: boolean): string {
  const kind = mutationKindName(m.kind);
  const key = JSON.stringify(m.key);
  switch (m.kind) {
    case MutationKind.MUTATION_KIND_PUT:
    case MutationKind.MUTATION_KIND_APPEND:
      return `${kind} ${key} ${hex ? m.value.toString("hex") : JSON.stringify(m.value.toString("utf8"))}`;
    case MutationKind.MUTATION_KIND_ADD:
      return `${kind} ${key} ${m.delta}`;
    default:
      return `${kind} ${key}`;
  }
}

export function mutationJson(m: Mutation, hex: boolean): Record<string, unknown> {
  const kind = mutationKindName(m.kind);
  if (m.kind === MutationKind.MUTATION_KIND_ADD) return { kind, key: m.key, delta: m.delta };
  if (m.kind === MutationKind.MUTATION_KIND_DELETE) return { kind, key: m.key };
  return { kind, key: m.key, value: formatValue(m.value, hex) };
}

/** `lpctl tail`: one line per log entry (the LogStore's own entries, such as client registrations, have no mutations). */
export function formatLogRecord(record: LogRecord, hex: boolean, json: boolean): string {
  if (json) {
    const { mutations, ...rest } = record;
    return `${toJson({ ...rest, mutations: mutations.map((m) => mutationJson(m, hex)) })}\n`;
  }
  const writer = record.clientId === "" ? "" : ` client=${record.clientId} seq=${record.clientSeq}`;
  const body = record.mutations.length === 0 ? "(no mutations)" : record.mutations.map((m) => formatMutation(m, hex)).join("; ");
  return `lsn=${record.lsn} term=${record.term}${writer}  ${body}\n`;
}

/** `lpctl watch`: one line per mutation, prefixed by its transaction's LSN. */
export function formatWatchLines(lsn: bigint, mutations: readonly Mutation[], hex: boolean, json: boolean): string {
  return mutations
    .map((m) => (json ? `${toJson({ lsn, ...mutationJson(m, hex) })}\n` : `lsn=${lsn}  ${formatMutation(m, hex)}\n`))
    .join("");
}
