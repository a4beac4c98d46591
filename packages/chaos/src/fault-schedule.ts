import { assert } from "@logplayer/common";

/**
 * Which fault comes next, decided by a seeded PRNG and nothing else, so a seed
 * names one fault sequence. Pure: the caller owns time and processes.
 */

/**
 * kill / pause: a process. cut / stall: one link. partition: every Raft link
 * to and from one LogStore replica (the leader, when the injector finds one).
 */
export type FaultKind = "kill" | "pause" | "cut" | "stall" | "partition";

/** targetKind of a cut or stall of a LogPlayer's or the client's link. */
export const LINK_TARGET = "link";
/** targetKind of a cut or stall of a link between LogStore replicas. */
export const RAFT_LINK_TARGET = "raft-link";
/** The process kind whose replicas a partition separates. */
export const REPLICA_SERVICE = "logstore";

/** A process that can be killed or paused; `service` is its kind ("logstore", "shard", "logplayer", ...). */
export interface ProcessTarget {
  name: string;
  service: string;
}

export interface FaultTargets {
  processes: readonly ProcessTarget[];
  /** Names of the links (proxies) that can be cut: the LogPlayers' and the client's. */
  links: readonly string[];
  /** Names of the links between LogStore replicas (Raft), one per direction. */
  raftLinks?: readonly string[];
}

export interface FaultDecision {
  kind: FaultKind;
  /**
   * A process name for kill/pause, a link name for cut/stall; for a
   * partition, the replica to isolate when the injector finds no leader.
   */
  target: string;
  /** The process kind for kill/pause, LINK_TARGET or RAFT_LINK_TARGET for cut/stall, REPLICA_SERVICE for partition. */
  targetKind: string;
  /** Names held busy while the fault lasts: the target, or every Raft link for a partition. */
  occupies: readonly string[];
  /** How long the process stays down / paused, or the link stays cut / stalled. */
  durationMs: number;
}

export interface FaultScheduleConfig {
  /** Pause between the start of two faults, drawn uniformly in [min, max]. */
  gapMsMin: number;
  gapMsMax: number;
  /** How long a fault lasts, drawn uniformly in [min, max]. */
  durationMsMin: number;
  durationMsMax: number;
  /**
   * How long a link stays stalled (silent, nothing closed). Longer than the
   * rest: only timeouts notice a stall, and the interesting ones (the
   * LogPlayer's ack timeout, 5 s by default) must get a chance to fire.
   */
  stallMsMin: number;
  stallMsMax: number;
  /**
   * How long a partition lasts. Longer than a LogStore election timeout
   * (1-2 s by default: 10-20 ticks of 100 ms) plus a pre-vote round, so the
   * followers usually elect a new leader before the partition heals.
   */
  partitionMsMin: number;
  partitionMsMax: number;
  /** Faults active at once; the injector waits for one to end before starting more. */
  faultsActiveMax: number;
}

export const DEFAULT_FAULT_SCHEDULE: FaultScheduleConfig = {
  gapMsMin: 300,
  gapMsMax: 1500,
  durationMsMin: 200,
  durationMsMax: 3000,
  stallMsMin: 1000,
  stallMsMax: 7000,
  partitionMsMin: 2500,
  partitionMsMax: 5000,
  faultsActiveMax: 2,
};

export function validateFaultSchedule(config: FaultScheduleConfig): void {
  assert(config.gapMsMin >= 0 && config.gapMsMin <= config.gapMsMax, "fault gap range is ordered");
  assert(config.durationMsMin >= 0 && config.durationMsMin <= config.durationMsMax, "fault duration range is ordered");
  assert(config.stallMsMin >= 0 && config.stallMsMin <= config.stallMsMax, "stall duration range is ordered");
  assert(config.partitionMsMin >= 0 && config.partitionMsMin <= config.partitionMsMax, "partition duration range is ordered");
  assert(Number.isInteger(config.faultsActiveMax) && config.faultsActiveMax >= 1, "faultsActiveMax is a positive integer");
}

/**
 * Draws faults. The first round covers every (fault kind, target kind) pair
 * once, in a seeded order, so even a short run kills every kind of process,
 * pauses one, cuts and stalls a link, and (with Raft links) cuts and stalls a
 * Raft link and partitions a replica; after that each fault is drawn at
 * random. Targets that are busy (already down, paused or cut) are skipped; a
 * partition needs every Raft link free (it does not know in advance which
 * replica will lead).
 */
export class FaultSchedule {
  readonly #random: () => number;
  readonly #config: FaultScheduleConfig;
  readonly #targets: FaultTargets;
  readonly #coverage: { kind: FaultKind; targetKind: string }[];

  constructor(random: () => number, targets: FaultTargets, config: FaultScheduleConfig = DEFAULT_FAULT_SCHEDULE) {
    validateFaultSchedule(config);
    assert(targets.processes.length > 0 || targets.links.length > 0, "there is something to inject faults into");
    this.#random = random;
    this.#config = config;
    this.#targets = targets;
    this.#coverage = shuffle(coverageRound(targets), random);
  }

  /** Milliseconds to wait before the next fault. */
  nextGapMs(): number {
    return this.#uniform(this.#config.gapMsMin, this.#config.gapMsMax);
  }

  /** The next fault whose target is not busy, or undefined when every candidate is busy. */
  next(busy: ReadonlySet<string>): FaultDecision | undefined {
    const index = this.#coverage.findIndex((c) => this.#candidates(c.kind, c.targetKind, busy).length > 0);
    if (index >= 0) {
      const [wanted] = this.#coverage.splice(index, 1);
      return this.#decide(wanted!.kind, this.#candidates(wanted!.kind, wanted!.targetKind, busy));
    }
    const { kind, targetKind } = this.#pickKind();
    const candidates = this.#candidates(kind, targetKind, busy);
    return candidates.length === 0 ? undefined : this.#decide(kind, candidates);
  }

  /** True until every (fault kind, target kind) pair has been drawn once. */
  get coveragePending(): number {
    return this.#coverage.length;
  }

  #pickKind(): { kind: FaultKind; targetKind?: string } {
    // Kills are the most telling fault; link faults next; pauses (zombies) least often.
    const roll = this.#random();
    const raft = this.#raftLinks.length > 0;
    if (this.#targets.links.length === 0 && !raft) return { kind: roll < 0.8 ? "kill" : "pause" };
    if (!raft) {
      if (roll < 0.45) return { kind: "kill" };
      if (roll < 0.65) return { kind: "cut", targetKind: LINK_TARGET };
      return roll < 0.8 ? { kind: "stall", targetKind: LINK_TARGET } : { kind: "pause" };
    }
    if (roll < 0.4) return { kind: "kill" };
    if (roll < 0.5) return { kind: "cut", targetKind: LINK_TARGET };
    if (roll < 0.6) return { kind: "stall", targetKind: LINK_TARGET };
    if (roll < 0.68) return { kind: "cut", targetKind: RAFT_LINK_TARGET };
    if (roll < 0.76) return { kind: "stall", targetKind: RAFT_LINK_TARGET };
    if (roll < 0.85) return { kind: "partition", targetKind: REPLICA_SERVICE };
    return { kind: "pause" };
  }

  get #raftLinks(): readonly string[] {
    return this.#targets.raftLinks ?? [];
  }

  #candidates(kind: FaultKind, targetKind: string | undefined, busy: ReadonlySet<string>): { name: string; kind: string }[] {
    if (kind === "cut" || kind === "stall") {
      const [links, linkKind] = targetKind === RAFT_LINK_TARGET ? [this.#raftLinks, RAFT_LINK_TARGET] : [this.#targets.links, LINK_TARGET];
      return links.filter((l) => !busy.has(l)).map((name) => ({ name, kind: linkKind }));
    }
    if (kind === "partition") {
      if (this.#raftLinks.length === 0 || this.#raftLinks.some((l) => busy.has(l))) return [];
      targetKind = REPLICA_SERVICE;
    }
    return this.#targets.processes
      .filter((p) => !busy.has(p.name) && (targetKind === undefined || p.service === targetKind))
      .map((p) => ({ name: p.name, kind: p.service }));
  }

  #decide(kind: FaultKind, candidates: { name: string; kind: string }[]): FaultDecision {
    assert(candidates.length > 0, "a fault has a target");
    const chosen = candidates[Math.floor(this.#random() * candidates.length)]!;
    const [min, max] =
      kind === "stall"
        ? [this.#config.stallMsMin, this.#config.stallMsMax]
        : kind === "partition"
          ? [this.#config.partitionMsMin, this.#config.partitionMsMax]
          : [this.#config.durationMsMin, this.#config.durationMsMax];
    const durationMs = this.#uniform(min, max);
    const occupies = kind === "partition" ? [...this.#raftLinks] : [chosen.name];
    return { kind, target: chosen.name, targetKind: chosen.kind, occupies, durationMs };
  }

  #uniform(min: number, max: number): number {
    return Math.round(min + this.#random() * (max - min));
  }
}

function coverageRound(targets: FaultTargets): { kind: FaultKind; targetKind: string }[] {
  const services = [...new Set(targets.processes.map((p) => p.service))];
  const round: { kind: FaultKind; targetKind: string }[] = services.map((s) => ({ kind: "kill", targetKind: s }));
  // One pause of a LogPlayer (a zombie) if there is one, else of any process.
  const pauseKind = services.includes("logplayer") ? "logplayer" : services[0];
  if (pauseKind !== undefined) round.push({ kind: "pause", targetKind: pauseKind });
  if (targets.links.length > 0) round.push({ kind: "cut", targetKind: LINK_TARGET }, { kind: "stall", targetKind: LINK_TARGET });
  if ((targets.raftLinks ?? []).length > 0) {
    round.push(
      { kind: "cut", targetKind: RAFT_LINK_TARGET },
      { kind: "stall", targetKind: RAFT_LINK_TARGET },
      { kind: "partition", targetKind: REPLICA_SERVICE },
    );
  }
  return round;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
