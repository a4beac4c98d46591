import { assert } from "@logplayer/common";
import type { ChaosCluster } from "./chaos-cluster";
import type { Violation } from "./checker";
import { RAFT_LINK_TARGET, type FaultDecision, type FaultSchedule } from "./fault-schedule";
import { raftLinksOf } from "./raft-links";

/**
 * Carries out a FaultSchedule on a ChaosCluster in real time: SIGKILL then
 * restart, SIGSTOP then SIGCONT, cut then heal, stall then unstall; a
 * partition asks the replicas who leads and cuts every Raft link to and from
 * that one, then heals them. Every fault ends by undoing itself, so when
 * run() returns and drain() resolves the cluster is whole.
 */
export interface FaultCounts {
  /** SIGKILLs by process kind ("logstore", "shard", "logplayer", ...). */
  kills: Record<string, number>;
  /** SIGSTOP/SIGCONT pauses by process kind. */
  pauses: Record<string, number>;
  restarts: number;
  restartFailures: number;
  /** Cuts of a LogPlayer's or the client's link. */
  linkCuts: number;
  /** Such links stalled (relaying stopped, nothing closed). */
  linkStalls: number;
  /** Cuts of one direction of a link between LogStore replicas. */
  raftLinkCuts: number;
  raftLinkStalls: number;
  /** Replicas cut off from every other replica: "leader", or "follower" when no leader was found to isolate. */
  partitions: Record<string, number>;
  /** Partitions of the leader at whose end another replica led (asked just before healing). */
  partitionFailovers: number;
  /** Processes that exited without being killed (each is also a violation). */
  crashes: number;
}

export interface FaultInjectorConfig {
  /** Attempts to bring a killed process back before giving up (each failure is a violation). */
  restartAttemptsMax: number;
}

export const DEFAULT_FAULT_INJECTOR: FaultInjectorConfig = { restartAttemptsMax: 3 };
/** How long a partition waits for the replicas to say who leads. */
const LEADER_PROBE_TIMEOUT_MS = 500;

export class FaultInjector {
  readonly counts: FaultCounts = {
    kills: {},
    pauses: {},
    restarts: 0,
    restartFailures: 0,
    linkCuts: 0,
    linkStalls: 0,
    raftLinkCuts: 0,
    raftLinkStalls: 0,
    partitions: {},
    partitionFailovers: 0,
    crashes: 0,
  };
  readonly violations: Violation[] = [];
  readonly #cluster: ChaosCluster;
  readonly #schedule: FaultSchedule;
  readonly #config: FaultInjectorConfig;
  readonly #log: (line: string) => void;
  readonly #busy = new Set<string>();
  readonly #active = new Set<Promise<void>>();
  readonly #startedMs = Date.now();
  readonly #faultsActiveMax: number;

  constructor(
    cluster: ChaosCluster,
    schedule: FaultSchedule,
    faultsActiveMax: number,
    config: FaultInjectorConfig,
    log: (line: string) => void,
  ) {
    assert(config.restartAttemptsMax >= 1, "a killed process gets at least one restart attempt");
    this.#cluster = cluster;
    this.#schedule = schedule;
    this.#faultsActiveMax = faultsActiveMax;
    this.#config = config;
    this.#log = log;
  }

  /** Injects faults until `stopped()`; faults still active keep running (see drain()). */
  async run(stopped: () => boolean): Promise<void> {
    while (!stopped()) {
      await sleep(this.#schedule.nextGapMs());
      if (stopped()) break;
      if (this.#active.size >= this.#faultsActiveMax) await Promise.race(this.#active);
      const decision = this.#schedule.next(this.#busy);
      if (decision !== undefined) this.#track(decision.occupies, this.#inject(decision));
    }
  }

  /** Resolves when every active fault has been undone (processes restarted, links healed). */
  async drain(): Promise<void> {
    while (this.#active.size > 0) await Promise.all([...this.#active]);
  }

  /** A process died on its own: a violation, and it is restarted so the run goes on. */
  onCrash(name: string, description: string): void {
    this.counts.crashes += 1;
    this.violations.push({
      kind: "process-crashed",
      detail: `${name} exited on its own (${description})\n${this.#cluster.process(name).logTail()}`,
    });
    this.#log(`${this.#elapsed()} !! ${name} crashed (${description}); restarting`);
    if (!this.#busy.has(name)) this.#track([name], this.#restart(name));
  }

  async #inject(decision: FaultDecision): Promise<void> {
    const { kind, target, targetKind, durationMs } = decision;
    if (kind === "partition") {
      await this.#partition(target, durationMs);
      return;
    }
    this.#log(`${this.#elapsed()} ${kind} ${target} for ${durationMs} ms`);
    const raft = targetKind === RAFT_LINK_TARGET;
    switch (kind) {
      case "kill":
        this.#cluster.kill(target);
        this.counts.kills[targetKind] = (this.counts.kills[targetKind] ?? 0) + 1;
        await sleep(durationMs);
        await this.#restart(target);
        return;
      case "pause":
        if (!this.#cluster.pause(target)) return;
        this.counts.pauses[targetKind] = (this.counts.pauses[targetKind] ?? 0) + 1;
        await sleep(durationMs);
        this.#cluster.resume(target);
        return;
      case "cut":
        this.#cluster.proxy(target).cut();
        if (raft) this.counts.raftLinkCuts += 1;
        else this.counts.linkCuts += 1;
        await sleep(durationMs);
        this.#cluster.proxy(target).heal();
        return;
      case "stall":
        this.#cluster.proxy(target).stall();
        if (raft) this.counts.raftLinkStalls += 1;
        else this.counts.linkStalls += 1;
        await sleep(durationMs);
        this.#cluster.proxy(target).unstall();
        return;
    }
  }

  /**
   * Cuts the current leader (else `fallback`) off from every other replica,
   * both ways, for `durationMs`; before healing, asks again who leads, to
   * count a failover.
   */
  async #partition(fallback: string, durationMs: number): Promise<void> {
    const leader = await this.#cluster.logStoreLeader(LEADER_PROBE_TIMEOUT_MS);
    const isolated = leader ?? fallback;
    const role = leader === undefined ? "follower" : "leader";
    const links = raftLinksOf(this.#cluster.raftLinks, isolated);
    assert(links.length > 0, `${isolated} has Raft links`);
    this.#log(
      `${this.#elapsed()} partition ${isolated} (${leader === undefined ? "no leader found" : "the leader"}) from the other replicas for ${durationMs} ms`,
    );
    for (const link of links) this.#cluster.proxy(link.name).cut();
    this.counts.partitions[role] = (this.counts.partitions[role] ?? 0) + 1;
    await sleep(durationMs);
    if (leader !== undefined) {
      const leaderAtEnd = await this.#cluster.logStoreLeader(LEADER_PROBE_TIMEOUT_MS);
      if (leaderAtEnd !== undefined && leaderAtEnd !== leader) this.counts.partitionFailovers += 1;
    }
    for (const link of links) this.#cluster.proxy(link.name).heal();
  }

  async #restart(name: string): Promise<void> {
    for (let attempt = 1; attempt <= this.#config.restartAttemptsMax; attempt++) {
      try {
        await this.#cluster.restart(name);
        this.counts.restarts += 1;
        return;
      } catch (err: unknown) {
        this.counts.restartFailures += 1;
        const message = err instanceof Error ? err.message : String(err);
        this.violations.push({ kind: "restart-failed", detail: `${name} restart attempt ${attempt}: ${message}` });
        this.#log(`${this.#elapsed()} !! ${name} failed to restart (attempt ${attempt})`);
      }
    }
  }

  #track(targets: readonly string[], work: Promise<void>): void {
    for (const target of targets) {
      assert(!this.#busy.has(target), `one fault at a time on ${target}`);
      this.#busy.add(target);
    }
    const done = work
      .catch((err: unknown) => {
        this.violations.push({
          kind: "injector-error",
          detail: `fault on ${targets.join(", ")}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        });
      })
      .finally(() => {
        for (const target of targets) this.#busy.delete(target);
        this.#active.delete(done);
      });
    this.#active.add(done);
  }

  #elapsed(): string {
    return `+${((Date.now() - this.#startedMs) / 1000).toFixed(1)}s`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
