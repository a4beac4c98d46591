import { randomUUID } from "node:crypto";
import {
  DEFAULT_BACKOFF,
  DEFAULT_TRANSACTION_LIMITS,
  grpcMessageBytesMax,
  invalidArgument,
  type BackoffConfig,
  type TransactionLimits,
} from "@logplayer/common";
import {
  INSECURE,
  insecureRequested,
  TLS_DIR_DEFAULT,
  tlsFilesInDir,
  TRUST_DOMAIN_DEFAULT,
  loadTransportSecurity,
  type TransportSecurity,
} from "@logplayer/tls";
import { toClientError } from "./errors";

export interface ClientOptions {
  /**
   * Discovery: any LogStore replica(s) "host:port", instead of `logstore` and `shards`. `connect` asks them
   * for Status and takes every replica's address and the shard addresses (index = shard id) from it; the
   * LogStore reports shard addresses when started with --shard-addresses (`pnpm start` does). `shards`,
   * when given too, is used instead of the reported ones.
   */
  seeds?: string[];
  /** LogStore address(es) "host:port". With several, the client finds the leader among them and follows redirects. */
  logstore?: string | string[];
  /** Shard addresses "host:port"; the index is the shard id. Must match the LogStore's shard map. */
  shards?: string[];
  /** Default deadline of every call, and of `connect` (default 5000). */
  timeoutMs?: number;
  /** Sent with every append, with an increasing client_seq (default: a random UUID). */
  clientId?: string;
  /** gRPC message cap, both directions (default: grpcMessageBytesMax of the limits in use). */
  messageBytesMax?: number;
  /**
   * Limits checked client-side before sending (default: the cluster's, from the LogStore's Status at
   * connect; DEFAULT_TRANSACTION_LIMITS from a LogStore that predates recorded limits).
   */
  limits?: TransactionLimits;
  /** Backoff between retries of a read that failed with UNAVAILABLE (default DEFAULT_BACKOFF). */
  readBackoff?: BackoffConfig;
  /** Most attempts of one read (or one scan page) even when its deadline is far away (default 100). */
  readAttemptsMax?: number;
  /** Backoff between attempts of one commit (same client_seq) after UNAVAILABLE, DEADLINE_EXCEEDED or a not-leader refusal (default DEFAULT_BACKOFF). */
  commitBackoff?: BackoffConfig;
  /** Most attempts of one commit, even when its deadline is far away (default 20). */
  commitAttemptsMax?: number;
  /** Deadline of one round of Status probes looking for the leader during a commit's retries, capped by the commit's own (default 1000). */
  leaderProbeTimeoutMs?: number;
  /** Span of client_seqs in flight (oldest unfinished to newest); more commits wait. Keep it below the LogStore's per-client dedupe window (1024 seqs) (default 512). */
  commitsInflightMax?: number;
  /** Commits waiting for a slot; beyond it commit() fails with LimitExceededError (default 100000). */
  commitsQueuedMax?: number;
  /**
   * mTLS with a client certificate, or INSECURE for a cluster run with --insecure
   * (default: LP_INSECURE=1 gives INSECURE, else the certificate client-default in
   * LP_TLS_DIR or ./data/tls, as `pnpm start` makes it).
   */
  security?: TransportSecurity;
  /** Send commits on one pipelined AppendStream per LogStore instead of a unary call each (default true; an older LogStore without it is detected and served by unary Append). */
  appendStream?: boolean;
}

export const DEFAULT_TIMEOUT_MS = 5_000;
/** One hour: longer than any sensible call, short enough to catch a unit mistake (seconds vs ms). */
export const TIMEOUT_MS_MAX = 3_600_000;
export const DEFAULT_READ_ATTEMPTS_MAX = 100;
export const READ_ATTEMPTS_MAX_LIMIT = 10_000;
export const DEFAULT_COMMIT_ATTEMPTS_MAX = 20;
export const COMMIT_ATTEMPTS_MAX_LIMIT = 10_000;
export const DEFAULT_LEADER_PROBE_TIMEOUT_MS = 1_000;
export const DEFAULT_COMMITS_INFLIGHT_MAX = 512;
/** The LogStore remembers the last 1024 seqs per client: in-flight seqs must stay within that. */
export const COMMITS_INFLIGHT_MAX_LIMIT = 1024;
export const DEFAULT_COMMITS_QUEUED_MAX = 100_000;

export interface ResolvedOptions {
  readonly logStoreAddresses: readonly string[];
  readonly shardAddresses: readonly string[];
  readonly timeoutMs: number;
  readonly clientId: string;
  readonly messageBytesMax: number;
  readonly limits: TransactionLimits;
  readonly readBackoff: BackoffConfig;
  readonly readAttemptsMax: number;
  readonly commitBackoff: BackoffConfig;
  readonly commitAttemptsMax: number;
  readonly leaderProbeTimeoutMs: number;
  readonly commitsInflightMax: number;
  readonly commitsQueuedMax: number;
  readonly appendStream: boolean;
  readonly security: TransportSecurity;
}

/** The client name of the certificate `pnpm start` makes for applications: client-default.crt. */
export const DEFAULT_CLIENT_CERTIFICATE_NAME = "default";

/** The security a client uses when none is given (see ClientOptions.security). */
export function defaultClientSecurity(env: NodeJS.ProcessEnv = process.env): TransportSecurity {
  if (insecureRequested({}, env)) return INSECURE;
  const dir = env["LP_TLS_DIR"] ?? TLS_DIR_DEFAULT;
  const trustDomain = env["LP_TLS_TRUST_DOMAIN"] ?? TRUST_DOMAIN_DEFAULT;
  return loadTransportSecurity(tlsFilesInDir(dir, { role: "client", name: DEFAULT_CLIENT_CERTIFICATE_NAME }), trustDomain, {
    role: "client",
  });
}

const ADDRESS = /^[^\s,]+:(\d{1,5})$/;

function checkAddress(what: string, address: string): string {
  const match = ADDRESS.exec(address);
  if (!match || Number(match[1]) > 65535)
    throw toClientError(invalidArgument(`${what}: expected host:port, got ${JSON.stringify(address)}`));
  return address;
}

function checkInteger(what: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw toClientError(invalidArgument(`${what} must be an integer in [${min}, ${max}], got ${value}`));
  }
  return value;
}

export function checkTimeoutMs(value: number): number {
  return checkInteger("timeoutMs", value, 1, TIMEOUT_MS_MAX);
}

/**
 * The options with the cluster's limits (from Status) where the caller gave
 * none, and the message cap derived from them where the caller gave none:
 * then every value the cluster can hold can be read back. Pure.
 */
export function withClusterLimits(
  resolved: ResolvedOptions,
  options: ClientOptions,
  clusterLimits: TransactionLimits | null,
): ResolvedOptions {
  if (options.limits !== undefined || clusterLimits === null) return resolved;
  const messageBytesMax = options.messageBytesMax ?? grpcMessageBytesMax(clusterLimits);
  return { ...resolved, limits: clusterLimits, messageBytesMax };
}

/** Validates options and fills in defaults. Throws InvalidArgumentError naming the bad option. */
export function resolveOptions(options: ClientOptions): ResolvedOptions {
  if (options.seeds !== undefined && options.logstore !== undefined)
    throw toClientError(invalidArgument("give either seeds (discovery) or logstore, not both"));
  const logStores = options.seeds ?? (typeof options.logstore === "string" ? [options.logstore] : (options.logstore ?? []));
  if (logStores.length === 0)
    throw toClientError(invalidArgument(`${options.seeds ? "seeds" : "logstore"}: at least one address is required`));
  const shards = options.shards ?? [];
  if (options.seeds === undefined && shards.length === 0) throw toClientError(invalidArgument("shards: at least one address is required"));
  const limits = options.limits ?? DEFAULT_TRANSACTION_LIMITS;
  const clientId = options.clientId ?? randomUUID();
  if (clientId === "") throw toClientError(invalidArgument("clientId must not be empty"));
  return {
    logStoreAddresses: logStores.map((a) => checkAddress(options.seeds ? "seeds" : "logstore", a)),
    shardAddresses: shards.map((a) => checkAddress("shards", a)),
    timeoutMs: checkTimeoutMs(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    clientId,
    messageBytesMax: checkInteger("messageBytesMax", options.messageBytesMax ?? grpcMessageBytesMax(limits), 1024, 2 ** 31 - 1),
    limits,
    readBackoff: options.readBackoff ?? DEFAULT_BACKOFF,
    readAttemptsMax: checkInteger("readAttemptsMax", options.readAttemptsMax ?? DEFAULT_READ_ATTEMPTS_MAX, 1, READ_ATTEMPTS_MAX_LIMIT),
    commitBackoff: options.commitBackoff ?? DEFAULT_BACKOFF,
    commitAttemptsMax: checkInteger(
      "commitAttemptsMax",
      options.commitAttemptsMax ?? DEFAULT_COMMIT_ATTEMPTS_MAX,
      1,
      COMMIT_ATTEMPTS_MAX_LIMIT,
    ),
    leaderProbeTimeoutMs: checkInteger(
      "leaderProbeTimeoutMs",
      options.leaderProbeTimeoutMs ?? DEFAULT_LEADER_PROBE_TIMEOUT_MS,
      1,
      TIMEOUT_MS_MAX,
    ),
    commitsInflightMax: checkInteger(
      "commitsInflightMax",
      options.commitsInflightMax ?? DEFAULT_COMMITS_INFLIGHT_MAX,
      1,
      COMMITS_INFLIGHT_MAX_LIMIT,
    ),
    commitsQueuedMax: checkInteger("commitsQueuedMax", options.commitsQueuedMax ?? DEFAULT_COMMITS_QUEUED_MAX, 0, 10_000_000),
    appendStream: options.appendStream ?? true,
    security: options.security ?? defaultSecurityOrInvalid(),
  };
}

function defaultSecurityOrInvalid(): TransportSecurity {
  try {
    return defaultClientSecurity();
  } catch (err: unknown) {
    throw toClientError(invalidArgument(`security: ${err instanceof Error ? err.message : String(err)}`));
  }
}
