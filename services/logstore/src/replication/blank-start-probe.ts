import { type ChannelCredentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { failedPrecondition, grpcChannelOptions, type Logger, Status } from "@logplayer/common";
import { type ProbeResponse, ReplicationClient, type ReplicationServer } from "@logplayer/proto";
import type { HardState, NodeId } from "@logplayer/raft";
import { decideBlankStart, decideDamagedStart, damagedProbeAnswer, type ProbeAnswer } from "./blank-start";
import { LIMITS_MISMATCH, type Peer } from "./peers";
import type { RaftIdentity } from "./raft-state-file";
import { createReplicationService, probeAnswerFromWire } from "./replication-service";

export interface BlankStartOptions {
  readonly identity: RaftIdentity;
  readonly peers: readonly Peer[];
  /** --join: a blank replica of an existing cluster catches up as a non-voter instead of refusing to start. */
  readonly join: boolean;
  /**
   * Serves `service` on the replica's listen address until the returned
   * function is called: peers that start blank at the same time ask this
   * replica too, before it has a Raft node.
   */
  readonly serveWhileDeciding: (service: ReplicationServer) => Promise<() => Promise<void>>;
  readonly probeIntervalMs: number;
  /** How this replica reaches its peers (mTLS with its replica certificate, or plain text with --insecure). */
  readonly channelCredentials: ChannelCredentials;
  /** Stops asking (the process is shutting down). */
  readonly signal?: AbortSignal;
}

/**
 * Asks every peer what it holds until decideBlankStart can decide, and
 * returns the hard state to start from: empty for a new cluster, a
 * rejoining one otherwise. Throws FAILED_PRECONDITION when the replica must
 * not start (an existing cluster and no --join).
 */
export async function settleBlankStart(options: BlankStartOptions, logger: Logger): Promise<HardState> {
  const blank: ProbeAnswer = { state: "blank", term: 0n, lastIndex: 0n, commit: 0n };
  logger.info(
    { peers: options.peers.filter((peer) => peer.id !== options.identity.replicaId).map((peer) => peer.id), join: options.join },
    "empty data directory: asking every peer whether this cluster already exists",
  );
  return askPeersUntil(options, blank, logger, (answers, probedBy) => {
    const decision = decideBlankStart(options.identity.replicaId, answers, options.join, probedBy);
    switch (decision.kind) {
      case "bootstrap":
        logger.info(
          { probedBy: [...probedBy] },
          "every peer is blank too, or formed the cluster after asking this blank replica: starting as a new voter",
        );
        return { term: 0n, vote: 0, commit: 0n };
      case "rejoin":
        logger.warn(
          {
            term: decision.hardState.term.toString(),
            newest: decision.existing.id,
            lastIndex: decision.existing.lastIndex.toString(),
            votesAgainAtCommit: String(decision.hardState.rejoinUntil),
          },
          "the cluster exists and this replica's data directory is empty: rejoining as a non-voter until it holds every committed entry",
        );
        return decision.hardState;
      case "refuse":
        throw failedPrecondition(decision.reason);
      case "wait":
        return decision;
    }
  });
}

/**
 * Asks every peer for its commit index on behalf of a replica whose WAL is
 * damaged (see decideDamagedStart) and returns the rejoining hard state to
 * write before the damaged entries are dropped.
 */
export async function settleDamagedStart(
  options: Omit<BlankStartOptions, "join">,
  stored: HardState,
  keptLastLsn: bigint,
  logger: Logger,
): Promise<HardState> {
  return askPeersUntil({ ...options, join: false }, damagedProbeAnswer(stored, keptLastLsn), logger, (answers) => {
    const decision = decideDamagedStart(stored, keptLastLsn, answers);
    return decision.kind === "wait" ? decision : decision.hardState;
  });
}

/**
 * Probes every peer (answering their probes with `selfAnswer` meanwhile) until
 * `decide` returns a result rather than a wait; `decide` may throw to give up.
 */
async function askPeersUntil<T>(
  options: BlankStartOptions,
  selfAnswer: ProbeAnswer,
  logger: Logger,
  decide: (
    answers: ReadonlyMap<NodeId, ProbeAnswer | undefined>,
    probedBy: ReadonlySet<NodeId>,
  ) => T | { readonly kind: "wait"; readonly missing: readonly NodeId[] },
): Promise<T> {
  const { identity, peers } = options;
  /** Blank peers that asked this replica while it was deciding (answered with selfAnswer). */
  const probedBy = new Set<NodeId>();
  const peerIds = new Set(peers.map((peer) => peer.id));
  const service = createReplicationService(
    identity,
    () => {},
    (text) => logger.warn(text),
    // No Step is stepped while deciding, so no sender needs binding to its certificate here.
    null,
    (from, askerBlank) => {
      if (askerBlank && peerIds.has(from) && from !== identity.replicaId) probedBy.add(from);
      return selfAnswer;
    },
  );
  const stopServing = await options.serveWhileDeciding(service);
  const others = peers.filter((peer) => peer.id !== identity.replicaId);
  const clients = new Map(
    others.map((peer) => [
      peer.id,
      new ReplicationClient(peer.address, options.channelCredentials, {
        ...grpcChannelOptions(64 * 1024),
        // Peers come up at about the same time: notice each one soon after it listens.
        "grpc.initial_reconnect_backoff_ms": options.probeIntervalMs,
        "grpc.max_reconnect_backoff_ms": options.probeIntervalMs * 4,
      }),
    ]),
  );
  let lastWaitLogMs = Date.now();
  /** Peers that refused our probe (another cluster id or peer list), by id: logged with the wait. */
  const refusals = new Map<NodeId, string>();
  try {
    for (;;) {
      if (options.signal?.aborted === true) throw failedPrecondition("stopped while asking the peers how to start");
      const answers = new Map<NodeId, ProbeAnswer | undefined>(
        await Promise.all(
          [...clients].map(
            async ([id, client]) =>
              [id, await probeOnce(client, identity, id, options.probeIntervalMs * 5, refusals, selfAnswer.state === "blank")] as const,
          ),
        ),
      );
      throwOnLimitsMismatch(refusals);
      const decision = decide(answers, probedBy);
      if (!isWait(decision)) return decision;
      if (Date.now() - lastWaitLogMs >= 5000) {
        lastWaitLogMs = Date.now();
        const refused = Object.fromEntries([...refusals].filter(([id]) => decision.missing.includes(id)));
        logger.info({ missing: decision.missing, refused }, "waiting for these replicas to answer before deciding how to start");
      }
      await sleep(options.probeIntervalMs, options.signal);
    }
  } finally {
    for (const client of clients.values()) client.close();
    await stopServing();
  }
}

/**
 * Asks every peer once (each within `timeoutMs`) and refuses to start when one
 * was created with other cluster limits (it refuses our probe, naming both).
 * Peers that do not answer are not waited for: each refuses our Raft
 * messages the same way once it is up, and checks us when it starts.
 */
export async function checkPeerLimits(
  options: Pick<BlankStartOptions, "identity" | "peers" | "channelCredentials">,
  timeoutMs: number,
  logger: Logger,
): Promise<void> {
  const { identity } = options;
  const others = options.peers.filter((peer) => peer.id !== identity.replicaId);
  const refusals = new Map<NodeId, string>();
  const answered = await Promise.all(
    others.map(async (peer) => {
      const client = new ReplicationClient(peer.address, options.channelCredentials, grpcChannelOptions(64 * 1024));
      try {
        return (await probeOnce(client, identity, peer.id, timeoutMs, refusals)) !== undefined || refusals.has(peer.id);
      } finally {
        client.close();
      }
    }),
  );
  throwOnLimitsMismatch(refusals);
  const silent = others.filter((_, i) => answered[i] !== true).map((peer) => peer.id);
  logger.info({ checked: others.length - silent.length, silent }, "cluster limits checked against the peers that answered");
}

/** A peer that refused us for other cluster limits: this replica must not start (its message names both values). */
function throwOnLimitsMismatch(refusals: ReadonlyMap<NodeId, string>): void {
  for (const [id, reason] of refusals) {
    if (reason.startsWith(LIMITS_MISMATCH)) throw failedPrecondition(`replica ${id} refused this replica: ${reason}`);
  }
}

function isWait(value: unknown): value is { readonly kind: "wait"; readonly missing: readonly NodeId[] } {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "wait";
}

function probeOnce(
  client: ReplicationClient,
  identity: RaftIdentity,
  peerId: NodeId,
  timeoutMs: number,
  refusals: Map<NodeId, string>,
  askerBlank = false,
): Promise<ProbeAnswer | undefined> {
  return new Promise((resolve) => {
    const request = {
      clusterId: identity.clusterId,
      peersHash: identity.peersHash,
      from: identity.replicaId,
      clusterLimits: identity.clusterLimits ?? "",
      askerBlank,
    };
    client.probe(request, new Metadata(), { deadline: Date.now() + timeoutMs }, (err: ServiceError | null, response?: ProbeResponse) => {
      if (err?.code === Status.FAILED_PRECONDITION) refusals.set(peerId, err.details);
      else if (err === null) refusals.delete(peerId);
      resolve(err === null && response !== undefined ? probeAnswerFromWire(response, peerId) : undefined);
    });
  });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
