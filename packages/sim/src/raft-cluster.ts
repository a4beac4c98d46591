import { assert } from "@logplayer/common";
import { RaftDriver, type Completion, type RaftDriverPorts, type RaftDriverTestOnlyFaults } from "@logplayer/logstore";
import { DEFAULT_RAFT_CONFIG, EMPTY_HARD_STATE, MemoryStorage } from "@logplayer/raft";
import type { Entry, HardState, Message, NodeId, TestOnlyFaults } from "@logplayer/raft";
import { SimNetwork } from "./network";
import { describeNetworkFaults, pickNetworkFaults, type NetworkWeather } from "./network";
import { InvariantViolation, RaftInvariantChecker } from "./raft-checker";
import type { LogView } from "./raft-checker";
import { SimDisk } from "./sim-disk";
import { Simulator, DEFAULT_SIMULATOR_CONFIG } from "./simulator";

/**
 * The Raft scenario: N replicas, each the LogStore's own Raft driver
 * (services/logstore's RaftDriver, the one that ships) with its ports on a
 * simulated network, disk, clock and PRNG, on a faulty network and faulty disks,
 * a client proposing entries with unique ids, a nemesis crashing nodes and
 * cutting links, and the checker run after every step. At the end the
 * network heals, everyone restarts, and every acknowledged proposal must be
 * in every node's applied state exactly once.
 */
export interface RaftScenarioOptions {
  readonly seed: number;
  /** Events to run with faults on. */
  readonly steps: number;
  readonly nodes: number;
  readonly faults?: TestOnlyFaults;
  /** Breaks the driver's Ready order on purpose (checker tests only). */
  readonly driverFaults?: RaftDriverTestOnlyFaults;
  /** Events allowed, after healing, to reach quiescence before it counts as a liveness failure. */
  readonly quiesceStepsMax?: number;
}

export interface RaftScenarioResult {
  readonly ok: boolean;
  readonly seed: number;
  readonly violation: string | undefined;
  readonly replayCommand: string;
  readonly traceTail: readonly string[];
  readonly stats: {
    readonly steps: number;
    readonly simulatedMs: number;
    readonly proposed: number;
    readonly acked: number;
    readonly crashes: number;
    readonly termMax: bigint;
    readonly committed: bigint;
  };
}

/** Simulated milliseconds per Raft tick. */
const TICK_MS = 10;
const FSYNC_MS_MAX = 15; // typical; some seeds use slower disks
const CLIENT_PENDING_MAX = 32;
const CLIENT_TIMEOUT_MS = 2_000;
const DEFAULT_QUIESCE_STEPS_MAX = 60_000;
const RAFT_WEATHER: NetworkWeather = {
  dropProbabilities: [0, 0, 0.02, 0.1, 0.3],
  duplicateProbabilities: [0, 0.05, 0.2],
  delayMsMaxima: [3, 10, 30, 120],
};

interface DurableLog {
  hardState: HardState;
  readonly entries: Entry[];
}

interface LogWrite {
  readonly truncateAfter: bigint | undefined;
  readonly entries: readonly Entry[];
}

function applyLogWrite(state: DurableLog, write: LogWrite): DurableLog {
  if (write.truncateAfter !== undefined && write.truncateAfter < BigInt(state.entries.length)) {
    state.entries.length = Number(write.truncateAfter);
  }
  for (const entry of write.entries) {
    assert(entry.index === BigInt(state.entries.length) + 1n, "sim: durable log write leaves a hole");
    state.entries.push(entry);
  }
  return state;
}

/** Payload ids are uint32, big-endian in 4 bytes. */
export function encodeProposalId(id: number): Uint8Array {
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, id);
  return data;
}

export function decodeProposalId(data: Uint8Array): number {
  assert(data.length === 4, `sim: proposal of ${data.length} bytes`);
  return new DataView(data.buffer, data.byteOffset, 4).getUint32(0);
}

function entryKey(entry: Entry): string {
  return entry.kind === "normal" ? `p${decodeProposalId(entry.data)}` : entry.kind;
}

class SimRaftNode implements LogView {
  incarnation = 0;
  /** The production driver (input queue, Ready handling) over this node's simulated ports; undefined while down. */
  raft: RaftDriver | undefined = undefined;
  storage = new MemoryStorage();
  readonly disk = new SimDisk<DurableLog, LogWrite>({ hardState: EMPTY_HARD_STATE, entries: [] }, applyLogWrite, 10_000);
  /** The application's state: proposal ids applied, each at most once. */
  appliedIds = new Set<number>();
  stateIds: number[] = [];
  /** Role and term last seen by the checker, to trace changes. */
  lastRole = "";
  /** A paused process (GC pause, SIGSTOP) does nothing until then, then catches up. */
  pausedUntilMs = 0;

  constructor(readonly id: NodeId) {}

  lastIndex(): bigint {
    return this.storage.lastIndex();
  }

  term(index: bigint): bigint | undefined {
    return index <= this.storage.lastIndex() ? this.storage.term(index) : undefined;
  }

  entryKey(index: bigint): string | undefined {
    const entry = this.storage.allEntries()[Number(index) - 1];
    return entry === undefined ? undefined : entryKey(entry);
  }
}

interface PendingProposal {
  readonly node: NodeId;
  readonly incarnation: number;
  readonly index: bigint;
  readonly term: bigint;
  readonly sinceMs: number;
}

export class RaftCluster {
  readonly sim: Simulator;
  private readonly network: SimNetwork<Message>;
  private readonly checker = new RaftInvariantChecker(entryKey);
  private readonly nodes: SimRaftNode[] = [];
  private faultsOn = true;
  private crashes = 0;
  /** A driver's fatal error (a failed port or a broken invariant in the core): ends the run. */
  private fatal: Error | undefined = undefined;
  // Client state.
  private nextProposalId = 1;
  private leaderHint: NodeId = 0;
  private readonly pending = new Map<number, PendingProposal>();
  private readonly acked = new Set<number>();
  private readonly unacked: number[] = [];
  /** Drawn per seed so that runs explore small and large batches and windows. */
  private readonly nemesisGapMsMax: number;
  private readonly leaderChurnProbability: number;
  private readonly tuning: {
    entriesPerMessageMax: number;
    inflightMessagesMax: number;
    fsyncMsMax: number;
    preVote: boolean;
    checkQuorum: boolean;
  };

  constructor(private readonly options: RaftScenarioOptions) {
    assert(options.nodes >= 1 && options.nodes <= 9, `sim: nodes must be 1..9, got ${options.nodes}`);
    this.sim = new Simulator({ ...DEFAULT_SIMULATOR_CONFIG, seed: options.seed });
    const prng = this.sim.prng;
    this.tuning = {
      entriesPerMessageMax: prng.pick([1, 2, 8, 64]),
      inflightMessagesMax: prng.pick([1, 2, 4, 16]),
      fsyncMsMax: prng.pick([0, 5, FSYNC_MS_MAX, 60]),
      // Mostly the production settings, sometimes plain Raft: both must be safe.
      preVote: prng.chance(0.75),
      checkQuorum: prng.chance(0.75),
    };
    this.nemesisGapMsMax = prng.pick([100, 400]);
    this.leaderChurnProbability = prng.pick([0, 0.2, 0.5]);
    this.network = new SimNetwork<Message>(this.sim, { messagesInFlightMax: 10_000 }, (to, message) => this.deliver(to, message));
    for (let id = 1; id <= options.nodes; id++) this.nodes.push(new SimRaftNode(id));
  }

  run(): RaftScenarioResult {
    let violation: string | undefined;
    try {
      this.start();
      for (let step = 0; step < this.options.steps; step++) {
        if (!this.sim.step()) break;
        this.checkStep();
      }
      this.healAll();
      this.runUntilQuiescent();
      this.checkFinal();
    } catch (error: unknown) {
      if (error instanceof InvariantViolation) violation = error.message;
      else violation = `exception: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    }
    return this.result(violation);
  }

  // ---- setup and driving -------------------------------------------------------

  private start(): void {
    for (const node of this.nodes) this.boot(node);
    this.scheduleClient();
    this.scheduleNemesis();
  }

  private boot(node: SimRaftNode): void {
    const durable = node.disk.durableState();
    node.storage = new MemoryStorage(durable.hardState, durable.entries);
    node.incarnation++;
    node.pausedUntilMs = 0;
    node.appliedIds = new Set();
    node.stateIds = [];
    const voters = this.nodes.map((each) => each.id);
    node.raft = new RaftDriver({
      config: {
        ...DEFAULT_RAFT_CONFIG,
        id: node.id,
        voters,
        electionTicks: 10,
        heartbeatTicks: 2,
        inflightMessagesMax: this.tuning.inflightMessagesMax,
        preVote: this.tuning.preVote,
        checkQuorum: this.tuning.checkQuorum,
        entriesPerMessageMax: this.tuning.entriesPerMessageMax,
        bytesPerMessageMax: 512,
        uncommittedEntriesMax: 256,
        committedEntriesPerReadyMax: 16,
        appliedIndex: 0n,
        ...(this.options.faults === undefined ? {} : { testOnlyFaults: this.options.faults }),
      },
      storage: node.storage,
      tickMs: TICK_MS,
      ports: this.simPorts(node, node.incarnation),
      application: {
        apply: (entries) => {
          for (const entry of entries) this.apply(node, entry);
        },
        observe: () => {},
      },
      onFatal: (error) => {
        this.fatal ??= error;
      },
      ...(this.options.driverFaults === undefined ? {} : { testOnlyFaults: this.options.driverFaults }),
    });
    this.checker.onRestart(node.id, durable.hardState.commit);
    this.sim.trace(`n${node.id} boots (incarnation ${node.incarnation}, term ${durable.hardState.term}, last ${durable.entries.length})`);
    node.raft.start();
  }

  /**
   * The driver's ports over the simulator. Every completion checks the
   * incarnation: I/O of a crashed process never completes into its successor.
   */
  private simPorts(node: SimRaftNode, incarnation: number): RaftDriverPorts {
    const alive = (): boolean => node.incarnation === incarnation && node.raft !== undefined;
    return {
      log: { write: (truncateAfter, entries, done) => this.writeLog(node, incarnation, truncateAfter, entries, done) },
      hardState: {
        save: (hardState, mustSync, done) => {
          node.storage.setHardState(hardState);
          if (!mustSync) {
            // A commit-only change may be written lazily; the simulator writes it at once.
            node.disk.writeSynced((state) => ({ ...state, hardState }));
            done();
            return;
          }
          // Term and vote reach the disk only after an fsync that a crash can cut short.
          this.afterPause(node, this.sim.prng.between(0, this.tuning.fsyncMsMax), () => {
            if (!alive()) return;
            node.disk.writeSynced((state) => ({ ...state, hardState }));
            done();
          });
        },
      },
      transport: {
        send: (messages) => {
          for (const message of messages) this.network.send(node.id, message.to, message);
        },
      },
      clock: {
        every: (intervalMs, onTick) => {
          let cancelled = false;
          const schedule = (): void => {
            // Each node's clock runs at its own slightly jittered pace; a paused process does not tick.
            this.sim.schedule(intervalMs + this.sim.prng.between(-2, 2), () => {
              if (cancelled || !alive()) return;
              if (node.pausedUntilMs <= this.sim.nowMs) onTick();
              schedule();
            });
          };
          schedule();
          return () => {
            cancelled = true;
          };
        },
        // Simulated events run one at a time: an input's processing runs at once, within its event.
        soon: (run) => run(),
      },
      random: { int: (bound) => this.sim.prng.int(bound) },
    };
  }

  /** Runs `action` after `delayMs`, or once the node's pause ends if it is paused then. */
  private afterPause(node: SimRaftNode, delayMs: number, action: () => void): void {
    this.sim.schedule(delayMs, () => {
      if (node.pausedUntilMs > this.sim.nowMs) this.afterPause(node, node.pausedUntilMs - this.sim.nowMs, action);
      else action();
    });
  }

  private crash(node: SimRaftNode): void {
    if (node.raft === undefined) return;
    node.raft.stop();
    node.raft = undefined;
    node.incarnation++;
    node.disk.crash();
    this.crashes++;
    this.sim.trace(`n${node.id} CRASHES (keeps ${node.disk.durableState().entries.length} durable entries)`);
  }

  private deliver(to: NodeId, message: Message): void {
    const node = this.nodes[to - 1];
    assert(node !== undefined, `sim: message to unknown n${to}`);
    if (node.raft === undefined) return;
    if (node.pausedUntilMs > this.sim.nowMs) {
      this.sim.schedule(node.pausedUntilMs - this.sim.nowMs, () => this.deliver(to, message));
      return;
    }
    this.sim.trace(describeMessage(message));
    node.raft.step(message);
  }

  /** The log port: written (and readable) at once, durable after a simulated fsync that a crash can lose. */
  private writeLog(
    node: SimRaftNode,
    incarnation: number,
    truncateAfter: bigint | undefined,
    entries: readonly Entry[],
    done: Completion,
  ): void {
    if (truncateAfter !== undefined) node.storage.truncateAfter(truncateAfter);
    node.storage.append(entries);
    const first = entries[0];
    if (first !== undefined) this.checker.onWrite(node.id, entries, node.term(first.index - 1n));
    const writeId = node.disk.write({ truncateAfter, entries });
    this.sim.schedule(this.sim.prng.between(0, this.tuning.fsyncMsMax), () => this.fsyncDone(node, incarnation, writeId));
    done();
  }

  private fsyncDone(node: SimRaftNode, incarnation: number, writeId: number): void {
    if (node.incarnation !== incarnation || node.raft === undefined) return;
    if (node.pausedUntilMs > this.sim.nowMs) {
      this.sim.schedule(node.pausedUntilMs - this.sim.nowMs, () => this.fsyncDone(node, incarnation, writeId));
      return;
    }
    node.disk.sync(writeId);
    const last = node.disk.durableState().entries.at(-1);
    if (last === undefined) return;
    node.raft.persisted(last.index, last.term);
  }

  private apply(node: SimRaftNode, entry: Entry): void {
    this.checker.onApply(node.id, entry);
    if (entry.kind !== "normal") return;
    const id = decodeProposalId(entry.data);
    // The application dedupes on the proposal id: a re-proposed id applies once.
    if (!node.appliedIds.has(id)) {
      node.appliedIds.add(id);
      node.stateIds.push(id);
    }
    const proposal = this.pending.get(id);
    if (proposal === undefined || proposal.node !== node.id || proposal.incarnation !== node.incarnation) return;
    if (proposal.index !== entry.index) return;
    this.pending.delete(id);
    if (proposal.term === entry.term) {
      this.acked.add(id);
      this.sim.trace(`client: p${id} ACKED by n${node.id} at index ${entry.index}`);
    } else {
      this.unacked.push(id);
    }
  }

  // ---- client ----------------------------------------------------------------

  private scheduleClient(): void {
    this.sim.schedule(this.sim.prng.between(2, 30), () => {
      this.expireProposals();
      if (this.faultsOn) this.proposeOne();
      this.scheduleClient();
    });
  }

  private proposeOne(): void {
    if (this.pending.size >= CLIENT_PENDING_MAX) return;
    const prng = this.sim.prng;
    const running = this.nodes.filter((node) => node.raft !== undefined);
    if (running.length === 0) return;
    const hinted = this.nodes[this.leaderHint - 1];
    const node = hinted?.raft !== undefined && prng.chance(0.9) ? hinted : prng.pick(running);
    if (node.pausedUntilMs > this.sim.nowMs) return;
    const retry = this.unacked.length > 0 && prng.chance(0.3);
    const id = retry ? (this.unacked.shift() ?? 0) : this.nextProposalId++;
    const raft = node.raft;
    assert(raft !== undefined, "sim: proposing to a stopped node");
    const incarnation = node.incarnation;
    // The driver runs the proposal as one input: at once, or after the Ready it is waiting on (then
    // dropped if the node crashes first, like a request lost with its process).
    raft.proposeData(encodeProposalId(id), (result) => {
      if (node.incarnation !== incarnation) return;
      if (result.ok) {
        this.pending.set(id, { node: node.id, incarnation, index: result.index, term: result.term, sinceMs: this.sim.nowMs });
        this.sim.trace(`client: p${id} proposed at n${node.id} index ${result.index} term ${result.term}${retry ? " (retry)" : ""}`);
      } else {
        this.leaderHint = result.leaderHint;
        this.unacked.push(id);
      }
    });
  }

  /** A proposal unanswered for too long is given up (it may still commit: the retry is deduped). */
  private expireProposals(): void {
    for (const [id, proposal] of this.pending) {
      if (this.sim.nowMs - proposal.sinceMs < CLIENT_TIMEOUT_MS) continue;
      this.pending.delete(id);
      this.unacked.push(id);
    }
  }

  // ---- nemesis ---------------------------------------------------------------

  private scheduleNemesis(): void {
    this.sim.schedule(this.sim.prng.between(10, this.nemesisGapMsMax), () => {
      if (!this.faultsOn) return;
      this.nemesisAction();
      this.scheduleNemesis();
    });
  }

  private nemesisAction(): void {
    const prng = this.sim.prng;
    const choice = prng.int(13);
    // Faults aimed at the current leader find more: most interesting schedules start there.
    const leader = this.nodes.find((node) => node.raft?.status().role === "leader");
    if (choice < 3) {
      this.crashFor(choice === 0 && leader !== undefined ? leader : prng.pick(this.nodes), prng.between(20, 1_500));
    } else if (choice < 5) {
      const groups: NodeId[][] = [[], []];
      for (const node of this.nodes) groups[prng.int(2)]?.push(node.id);
      this.network.partition(groups);
      this.sim.trace(`nemesis: partition [${groups[0]?.join(",")}] | [${groups[1]?.join(",")}]`);
    } else if (choice < 6 && leader !== undefined) {
      this.network.partition([[leader.id], this.nodes.filter((node) => node !== leader).map((node) => node.id)]);
      this.sim.trace(`nemesis: isolate leader n${leader.id}`);
    } else if (choice < 8) {
      this.network.heal();
      this.sim.trace("nemesis: heal partition");
    } else if (choice < 9) {
      const node = leader !== undefined && prng.chance(0.5) ? leader : prng.pick(this.nodes);
      node.pausedUntilMs = this.sim.nowMs + prng.between(20, 600);
      this.sim.trace(`nemesis: pause n${node.id} until t=${node.pausedUntilMs}ms`);
    } else {
      this.changeWeather();
    }
  }

  /**
   * Leader churn: sometimes a fresh leader fails within milliseconds, before
   * its first entries spread. Raft's hardest schedules (Figure 8) are chains
   * of such short reigns; random faults alone rarely line them up.
   */
  private maybeDeposeNewLeader(node: SimRaftNode): void {
    const prng = this.sim.prng;
    if (!this.faultsOn || !prng.chance(this.leaderChurnProbability)) return;
    const incarnation = node.incarnation;
    this.sim.schedule(prng.between(0, 10), () => {
      if (node.incarnation !== incarnation || !this.faultsOn) return;
      if (prng.chance(0.5)) {
        this.crashFor(node, prng.between(20, 600));
      } else {
        this.network.partition([[node.id], this.nodes.filter((other) => other !== node).map((other) => other.id)]);
        this.sim.trace(`nemesis: isolate new leader n${node.id}`);
      }
    });
  }

  private crashFor(node: SimRaftNode, downMs: number): void {
    this.crash(node);
    this.sim.schedule(downMs, () => {
      if (node.raft === undefined && this.faultsOn) this.boot(node);
    });
  }

  private changeWeather(): void {
    const faults = pickNetworkFaults(this.sim.prng, RAFT_WEATHER);
    this.network.faults = faults;
    this.sim.trace(describeNetworkFaults(faults));
  }

  // ---- checks ----------------------------------------------------------------

  private checkStep(): void {
    if (this.fatal !== undefined) throw this.fatal;
    for (const node of this.nodes) {
      if (node.raft === undefined) continue;
      const status = node.raft.status();
      const role = `${status.role} t${status.term}`;
      if (role !== node.lastRole) {
        node.lastRole = role;
        this.sim.trace(`n${node.id} is ${role} (last ${status.lastIndex}, commit ${status.commit})`);
        if (status.role === "leader") this.maybeDeposeNewLeader(node);
      }
      this.checker.checkNode(status, node);
    }
  }

  private healAll(): void {
    this.faultsOn = false;
    this.network.heal();
    this.network.faults = { dropProbability: 0, duplicateProbability: 0, delayMsMin: 1, delayMsMax: 5 };
    for (const node of this.nodes) if (node.raft === undefined) this.boot(node);
    this.sim.trace("heal: network reliable, every node running");
  }

  private runUntilQuiescent(): void {
    const stepsMax = this.options.quiesceStepsMax ?? DEFAULT_QUIESCE_STEPS_MAX;
    for (let step = 0; step < stepsMax; step++) {
      if (!this.sim.step()) break;
      this.checkStep();
      if (step % 50 === 0 && this.quiescent()) return;
    }
    throw new InvariantViolation(`liveness: no quiescence within ${stepsMax} steps after healing`);
  }

  private quiescent(): boolean {
    const leaders = this.nodes.filter((node) => node.raft?.status().role === "leader");
    const leader = leaders[0]?.raft?.status();
    if (leaders.length !== 1 || leader === undefined || this.pending.size > 0) return false;
    // The leader's whole log committed (its no-op included): otherwise a follower may still hold a
    // conflicting uncommitted entry at the same last index, and the final check would see two logs.
    if (leader.commit !== leader.lastIndex) return false;
    return this.nodes.every((node) => {
      const status = node.raft?.status();
      return (
        status !== undefined && status.applied === leader.commit && status.lastIndex === leader.lastIndex && status.term === leader.term
      );
    });
  }

  private checkFinal(): void {
    const reference = this.nodes[0];
    assert(reference !== undefined, "sim: no nodes");
    const committed = reference.storage.allEntries();
    const counts = new Map<number, number>();
    for (const entry of committed) {
      if (entry.kind !== "normal") continue;
      const id = decodeProposalId(entry.data);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const lastIndex = reference.storage.lastIndex();
    for (const node of this.nodes) {
      // With log matching checked all along, the same last (index, term) means identical logs.
      if (node.storage.lastIndex() !== lastIndex || node.term(lastIndex) !== reference.term(lastIndex)) {
        throw new InvariantViolation(`final: n${node.id} log ends at ${node.storage.lastIndex()}, n1 at ${lastIndex}`);
      }
      if (new Set(node.stateIds).size !== node.stateIds.length) throw new InvariantViolation(`final: n${node.id} applied an id twice`);
    }
    for (const id of this.acked) {
      if ((counts.get(id) ?? 0) < 1) throw new InvariantViolation(`durability: acknowledged p${id} is not in the committed log`);
      for (const node of this.nodes) {
        if (!node.appliedIds.has(id)) throw new InvariantViolation(`durability: n${node.id} did not apply acknowledged p${id}`);
      }
    }
  }

  private result(violation: string | undefined): RaftScenarioResult {
    const { seed, steps, nodes, faults, driverFaults } = this.options;
    const faultFlags = [
      faults?.unsafeCommitPreviousTermEntries === true ? " --fault unsafe-commit-previous-term" : "",
      faults?.skipLogMatchingCheck === true ? " --fault skip-log-matching-check" : "",
      driverFaults?.sendBeforePersist === true ? " --fault send-before-persist" : "",
    ].join("");
    let termMax = 0n;
    for (const node of this.nodes) {
      const term = node.raft?.status().term ?? node.disk.durableState().hardState.term;
      if (term > termMax) termMax = term;
    }
    return {
      ok: violation === undefined,
      seed,
      violation,
      replayCommand: `node packages/sim/dist/run-raft.js --seed ${seed} --steps ${steps} --nodes ${nodes}${faultFlags}`,
      traceTail: this.sim.traceTail(),
      stats: {
        steps: this.sim.stepCount,
        simulatedMs: this.sim.nowMs,
        proposed: this.nextProposalId - 1,
        acked: this.acked.size,
        crashes: this.crashes,
        termMax,
        committed: this.checker.appliedIndexMax(),
      },
    };
  }
}

export function runRaftScenario(options: RaftScenarioOptions): RaftScenarioResult {
  return new RaftCluster(options).run();
}

function describeMessage(message: Message): string {
  const head = `n${message.to} <- ${message.type} from n${message.from} t${message.term}`;
  switch (message.type) {
    case "append": {
      const last = message.entries.at(-1)?.index;
      const range = last === undefined ? "" : ` [${message.prevIndex + 1n}..${last}]`;
      return `${head} prev (${message.prevIndex},t${message.prevTerm})${range} commit ${message.commit}`;
    }
    case "append-response":
      return `${head} ${message.reject ? `REJECT ${message.index} hint (${message.hintIndex},t${message.hintTerm})` : `ok ${message.index}`}`;
    case "heartbeat":
      return `${head} commit ${message.commit}`;
    case "vote":
    case "pre-vote":
      return `${head} last (${message.lastIndex},t${message.lastTerm})`;
    case "vote-response":
    case "pre-vote-response":
      return `${head} ${message.reject ? "REJECT" : "GRANT"}`;
    case "heartbeat-response":
      return head;
  }
}
