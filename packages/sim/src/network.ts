import { assert } from "@logplayer/common";
import type { Prng } from "./prng";
import type { Simulator } from "./simulator";

/** Node ids on the simulated network are small integers. */
export type SimNodeId = number;

export interface NetworkFaults {
  /** Each message is lost with this probability. */
  readonly dropProbability: number;
  /** Each delivered message is delivered twice with this probability. */
  readonly duplicateProbability: number;
  /** Delay is uniform in [delayMsMin, delayMsMax]; different delays reorder messages. */
  readonly delayMsMin: number;
  readonly delayMsMax: number;
}

export const RELIABLE_NETWORK: NetworkFaults = { dropProbability: 0, duplicateProbability: 0, delayMsMin: 1, delayMsMax: 5 };

/** What a nemesis picks network faults from; each scenario tunes its own menus. */
export interface NetworkWeather {
  readonly dropProbabilities: readonly number[];
  readonly duplicateProbabilities: readonly number[];
  readonly delayMsMaxima: readonly number[];
}

/** Picks one fault setting (drop, then duplicate, then delay: the order seeds replay with). */
export function pickNetworkFaults(prng: Pick<Prng, "pick">, weather: NetworkWeather): NetworkFaults {
  return {
    dropProbability: prng.pick(weather.dropProbabilities),
    duplicateProbability: prng.pick(weather.duplicateProbabilities),
    delayMsMin: 1,
    delayMsMax: prng.pick(weather.delayMsMaxima),
  };
}

/** The nemesis trace line for a change of network faults. */
export function describeNetworkFaults(faults: NetworkFaults): string {
  return `nemesis: network drop ${faults.dropProbability} dup ${faults.duplicateProbability} delay<=${faults.delayMsMax}ms`;
}

export interface NetworkConfig {
  /** Messages in flight at once; beyond this the network drops (as a full socket buffer would). */
  readonly messagesInFlightMax: number;
}

/**
 * A simulated network of point-to-point links that can drop, duplicate,
 * reorder and delay messages and be partitioned. Generic over the message
 * type: it never looks inside.
 */
export class SimNetwork<M> {
  faults: NetworkFaults = RELIABLE_NETWORK;
  /** Partition group of each node; nodes talk only within a group. Empty map = fully connected. */
  private readonly groupOf = new Map<SimNodeId, number>();
  private inFlight = 0;
  private droppedCount = 0;

  constructor(
    private readonly sim: Simulator,
    private readonly config: NetworkConfig,
    private readonly deliver: (to: SimNodeId, message: M) => void,
  ) {
    assert(config.messagesInFlightMax > 0, "network: messagesInFlightMax must be positive");
  }

  get dropped(): number {
    return this.droppedCount;
  }

  /** Splits the nodes into groups that cannot reach each other; unlisted nodes are isolated. */
  partition(groups: readonly (readonly SimNodeId[])[]): void {
    this.groupOf.clear();
    groups.forEach((group, position) => {
      for (const node of group) this.groupOf.set(node, position);
    });
  }

  heal(): void {
    this.groupOf.clear();
  }

  isPartitioned(): boolean {
    return this.groupOf.size > 0;
  }

  connected(a: SimNodeId, b: SimNodeId): boolean {
    if (this.groupOf.size === 0 || a === b) return true;
    const groupA = this.groupOf.get(a);
    return groupA !== undefined && groupA === this.groupOf.get(b);
  }

  send(from: SimNodeId, to: SimNodeId, message: M): void {
    const prng = this.sim.prng;
    if (!this.connected(from, to) || prng.chance(this.faults.dropProbability) || this.inFlight >= this.config.messagesInFlightMax) {
      this.droppedCount++;
      return;
    }
    const copies = prng.chance(this.faults.duplicateProbability) ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      this.inFlight++;
      this.sim.schedule(prng.between(this.faults.delayMsMin, this.faults.delayMsMax), () => {
        this.inFlight--;
        // A partition that started while the message was on the wire also cuts it.
        if (this.connected(from, to)) this.deliver(to, message);
        else this.droppedCount++;
      });
    }
  }
}
