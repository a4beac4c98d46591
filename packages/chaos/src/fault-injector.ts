import { assert } from "@logplayer/common";
import type { ChaosCluster } from "./chaos-cluster";
import type { Violation } from "./checker";
import type { FaultDecision, FaultSchedule } from "./fault-schedule";

/**
 * Carries out a FaultSchedule on a ChaosCluster in real time: SIGKILL then
 * restart, SIGSTOP then SIGCONT, cut then heal. Every fault ends by undoing
 * itself, so when run() returns and drain() resolves the cluster is whole.
 */
export interface FaultCounts {
  /** SIGKILLs by process kind ("logstore", "shard", "logplayer", ...). */
  kills: Record<string, number>;
  /** SIGSTOP/SIGCONT pauses by process kind. */
  pauses: Record<string, number>;
  restarts: number;
  restartFailures: number;
  linkCuts: number;
  /** Links stalled (relaying stopped, nothing closed). */
  linkStalls: number;
  /** Processes that exited without being killed (each is also a violation). */
  crashes: number;
}

export interface FaultInjectorConfig {
  /** Attempts to bring a killed process back before giving up (each failure is a violation). */
  restartAttemptsMax: number;
}

export const DEFAULT_FAULT_INJECTOR: FaultInjectorConfig = { restartAttemptsMax: 3 };

export class FaultInjector {
  readonly counts: FaultCounts = { kills: {}, pauses: {}, restarts: 0, restartFailures: 0, linkCuts: 0, linkStalls: 0, crashes: 0 };
  readonly violations: Violation[] = [];
  readonly #cluster: ChaosCluster;
  readonly #schedule: FaultSchedule;
  readonly #config: FaultInjectorConfig;
  readonly #log: (line: string) => void;
  readonly #busy = new Set<string>();
  readonly #active = new Set<Promise<void>>();
  readonly #startedMs = Date.now();
  readonly #faultsActiveMax: number;

  constructor(cluster: ChaosCluster, schedule: FaultSchedule, faultsActiveMax: number, config: FaultInjectorConfig, log: (line: string) => void) {
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
      if (decision !== undefined) this.#track(decision.target, this.#inject(decision));
    }
  }

  /** Resolves when every active fault has been undone (processes restarted, links healed). */
  async drain(): Promise<void> {
    while (this.#active.size > 0) await Promise.all([...this.#active]);
  }

  /** A process died on its own: a violation, and it is restarted so the run goes on. */
  onCrash(name: string, description: string): void {
    this.counts.crashes += 1;
    this.violations.push({ kind: "process-crashed", detail: `${name} exited on its own (${description})\n${this.#cluster.process(name).logTail()}` });
    this.#log(`${this.#elapsed()} !! ${name} crashed (${description}); restarting`);
    if (!this.#busy.has(name)) this.#track(name, this.#restart(name));
  }

  async #inject(decision: FaultDecision): Promise<void> {
    const { kind, target, targetKind, durationMs } = decision;
    this.#log(`${this.#elapsed()} ${kind} ${target} for ${durationMs} ms`);
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
        this.counts.linkCuts += 1;
        await sleep(durationMs);
        this.#cluster.proxy(target).heal();
        return;
      case "stall":
        this.#cluster.proxy(target).stall();
        this.counts.linkStalls += 1;
        await sleep(durationMs);
        this.#cluster.proxy(target).unstall();
        return;
    }
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

  #track(target: string, work: Promise<void>): void {
    assert(!this.#busy.has(target), `one fault at a time on ${target}`);
    this.#busy.add(target);
    const done = work.catch((err: unknown) => {
      this.violations.push({ kind: "injector-error", detail: `fault on ${target}: ${err instanceof Error ? err.stack ?? err.message : String(err)}` });
    }).finally(() => {
      this.#busy.delete(target);
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
