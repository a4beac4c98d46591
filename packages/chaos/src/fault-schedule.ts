import { assert } from "@logplayer/common";

/**
 * Which fault comes next, decided by a seeded PRNG and nothing else, so a seed
 * names one fault sequence. Pure: the caller owns time and processes.
 */

export type FaultKind = "kill" | "pause" | "cut" | "stall";

/** A process that can be killed or paused; `service` is its kind ("logstore", "shard", "logplayer", ...). */
export interface ProcessTarget {
  name: string;
  service: string;
}

export interface FaultTargets {
  processes: readonly ProcessTarget[];
  /** Names of the links (proxies) that can be cut. */
  links: readonly string[];
}

export interface FaultDecision {
  kind: FaultKind;
  /** A process name for kill/pause, a link name for cut/stall. */
  target: string;
  /** The process kind for kill/pause, "link" for cut/stall. */
  targetKind: string;
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
  faultsActiveMax: 2,
};

export function validateFaultSchedule(config: FaultScheduleConfig): void {
  assert(config.gapMsMin >= 0 && config.gapMsMin <= config.gapMsMax, "fault gap range is ordered");
  assert(config.durationMsMin >= 0 && config.durationMsMin <= config.durationMsMax, "fault duration range is ordered");
  assert(config.stallMsMin >= 0 && config.stallMsMin <= config.stallMsMax, "stall duration range is ordered");
  assert(Number.isInteger(config.faultsActiveMax) && config.faultsActiveMax >= 1, "faultsActiveMax is a positive integer");
}

/**
 * Draws faults. The first round covers every (fault kind, target kind) pair
 * once, in a seeded order, so even a short run kills every kind of process,
 * pauses one and cuts a link; after that each fault is drawn at random.
 * Targets that are busy (already down, paused or cut) are skipped.
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
    const kind = this.#pickKind();
    const candidates = this.#candidates(kind, undefined, busy);
    return candidates.length === 0 ? undefined : this.#decide(kind, candidates);
  }

  /** True until every (fault kind, target kind) pair has been drawn once. */
  get coveragePending(): number {
    return this.#coverage.length;
  }

  #pickKind(): FaultKind {
    // Kills are the most telling fault; link faults next; pauses (zombies) least often.
    const roll = this.#random();
    if (this.#targets.links.length === 0) return roll < 0.8 ? "kill" : "pause";
    if (roll < 0.45) return "kill";
    if (roll < 0.65) return "cut";
    return roll < 0.8 ? "stall" : "pause";
  }

  #candidates(kind: FaultKind, targetKind: string | undefined, busy: ReadonlySet<string>): { name: string; kind: string }[] {
    if (kind === "cut" || kind === "stall") {
      return this.#targets.links.filter((l) => !busy.has(l)).map((name) => ({ name, kind: "link" }));
    }
    return this.#targets.processes
      .filter((p) => !busy.has(p.name) && (targetKind === undefined || p.service === targetKind))
      .map((p) => ({ name: p.name, kind: p.service }));
  }

  #decide(kind: FaultKind, candidates: { name: string; kind: string }[]): FaultDecision {
    assert(candidates.length > 0, "a fault has a target");
    const chosen = candidates[Math.floor(this.#random() * candidates.length)]!;
    const durationMs = kind === "stall"
      ? this.#uniform(this.#config.stallMsMin, this.#config.stallMsMax)
      : this.#uniform(this.#config.durationMsMin, this.#config.durationMsMax);
    return { kind, target: chosen.name, targetKind: chosen.kind, durationMs };
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
  if (targets.links.length > 0) round.push({ kind: "cut", targetKind: "link" }, { kind: "stall", targetKind: "link" });
  return round;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
