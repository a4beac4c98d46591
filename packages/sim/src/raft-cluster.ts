import { assert } from "@logplayer/common";
import {
  decideBlankStart,
  diskFullRefusal,
  RaftDriver,
  messageToWire,
  RaftStateFileWriter,
  WalLogWriter,
  WalStorage,
  type RaftDriverPorts,
  type RaftDriverTestOnlyFaults,
  type ProbeAnswer,
  type RaftIdentity,
} from "@logplayer/logstore";
import { DEFAULT_RAFT_CONFIG } from "@logplayer/raft";
import type { Entry, Message, NodeId, TestOnlyFaults } from "@logplayer/raft";
import {
  DEFAULT_WAL_LIMITS,
  encodeEntryPayload,
  RECORD_HEADER_BYTES,
  SEGMENT_BYTES_MIN,
  SimDisk as SimSegmentDisk,
  Wal,
  type SimDiskScheduler,
  type WalLimits,
  type WalOpenReport,
  type WalTimers,
} from "@logplayer/wal";
import { RaftMessage } from "@logplayer/proto";
import { forgeMessage, randomAttacks, throughTheWire, type Attack, type AttackKind } from "./adversary";
import { SimNetwork } from "./network";
import { Prng } from "./prng";
import { describeNetworkFaults, pickNetworkFaults, type NetworkWeather } from "./network";
import { InvariantViolation, RaftInvariantChecker } from "./raft-checker";
import { ackBeforeDurable } from "./lying-segment-files";
import { SimRaftStateFile } from "./sim-raft-state-file";
import { entryKey, proposalEntry, proposalIdOf, recoveredLog, sharedSilentLogger, SimRaftNode } from "./sim-raft-node";
import { Simulator, DEFAULT_SIMULATOR_CONFIG } from "./simulator";
import { RaftSnapshots, type SnapshotFault } from "./raft-snapshots";

/**
 * The Raft scenario: N replicas, each the LogStore's own Raft driver
 * (services/logstore's RaftDriver, the one that ships) over the ports that
 * ship: the real Wal (group commit, segment rolls, truncation, recovery) on
 * simulated segment files behind the WalLogWriter and WalStorage, and the
 * RaftStateFileWriter on a simulated raft-state.json; only the network,
 * clock and PRNG are the simulator's own. A crash loses what the files had
 * not made durable and may tear the write in flight, and a restart recovers
 * through Wal.open. A client proposes entries with unique ids, a nemesis
 * crashes nodes and cuts links, and the checker runs after every step. At the
 * end the network heals, everyone restarts, and every acknowledged proposal
 * must be in every node's applied state exactly once.
 */
export interface RaftScenarioOptions {
  readonly seed: number;
  /** Events to run with faults on. */
  readonly steps: number;
  readonly nodes: number;
  readonly faults?: TestOnlyFaults;
  /** Breaks the driver's Ready order on purpose (checker tests only). */
  readonly driverFaults?: RaftDriverTestOnlyFaults;
  /** Breaks the WAL's files on purpose (checker tests only): writes acknowledged before they are durable. */
  readonly fileFaults?: { readonly ackBeforeDurable?: boolean };
  /** Events allowed, after healing, to reach quiescence before it counts as a liveness failure. */
  readonly quiesceStepsMax?: number;
  /**
   * Some crashes also wipe the node's disk: it restarts with no WAL and no
   * raft-state.json, and does what a LogStore with an empty data directory
   * started with --join does (decideBlankStart over its peers' answers, then
   * rejoining without a vote until caught up). A wipe strikes only while no
   * other node is blank or rejoining: two replicas of three without their
   * data is a loss no protocol can undo.
   */
  readonly diskWipes?: boolean;
  /**
   * Test-only: a wiped node restarts as a blank voter instead of asking its
   * peers and rejoining (the LogStore before issue #12's fix). Only with diskWipes.
   */
  readonly blankVoterAfterWipe?: boolean;
  /**
   * An authenticated replica gone wrong sends impossible Step messages (see
   * adversary.ts) into running replicas' drivers, through the wire encoding:
   * each must be refused and counted, and every property must still hold.
   * `attacks` given: exactly those (the property test's); omitted: drawn from the seed.
   */
  readonly adversary?: { readonly attacks?: readonly Attack[] };
  /**
   * Some nemesis actions fill a replica's disk (sometimes every replica's) for
   * a while: the WAL's writes fail with ENOSPC, it keeps what it wrote whole,
   * retries with backoff and resumes once space returns; meanwhile the client
   * meets the LogStore's RESOURCE_EXHAUSTED answer (diskFullRefusal) instead
   * of proposing there. raft-state.json shares the disk and fails with
   * ENOSPC too (the production writer retries it until there is room).
   */
  readonly diskFull?: boolean;
  /** Log compaction and InstallSnapshot (raft-snapshots.ts), and TEST-ONLY broken versions of them. */
  readonly snapshots?: boolean;
  readonly snapshotFault?: SnapshotFault;
}

/** Attacks drawn per seed by --adversary. */
const SEEDED_ATTACKS = 60;

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
    readonly diskWipes: number;
    /** Crashes that tore a WAL write in flight (part of it survived), and recoveries that cut a torn tail. */
    readonly tornWrites: number;
    readonly tornTailsCut: number;
    /** Conflicting suffixes the WALs truncated. */
    readonly truncations: number;
    readonly termMax: bigint;
    readonly committed: bigint;
    /**
     * Forged messages stepped into a running driver, refused by its check (the driver's count), and lost
     * with a crash before their turn came; other messages the checks refused (stale ones a restart outdated).
     */
    readonly adversary: {
      readonly injected: number;
      readonly refused: number;
      readonly lostInCrash: number;
      readonly refusedByKind: Readonly<Partial<Record<AttackKind, number>>>;
    };
    readonly refusedOther: number;
    /** Disks filled by the nemesis, WAL writes that met ENOSPC, times a WAL reported its disk full, appends refused for it. */
    readonly diskFull: { readonly fills: number; readonly noSpaceErrors: number; readonly walReports: number; readonly refusals: number };
    /** With --snapshots: snapshots taken, compactions, segments deleted, snapshots sent and installed, restarts from one. */
    readonly snapshots?: Readonly<Record<string, number>>;
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
  private diskWipes = 0;
  private tornTailsCut = 0;
  private truncations = 0;
  /** The last event started or completed I/O: promise continuations may be waiting to run (see settle). */
  private promisesTouched = false;
  /** The adversary's attacks, and each injected message its driver has not checked yet, with the incarnation it went to. */
  private readonly attacks: readonly Attack[];
  private readonly adversaryPending = new Map<
    Message,
    { readonly node: SimRaftNode; readonly incarnation: number; readonly kind: AttackKind }
  >();
  private readonly adversaryStats = { injected: 0, refused: 0, lostInCrash: 0 };
  private readonly refusedByKind: Partial<Record<AttackKind, number>> = {};
  private refusedOther = 0;
  private readonly diskFullStats = { fills: 0, walReports: 0, refusals: 0 };
  /** Each disk the nemesis filled, with the fill that holds it (a later fill of the same disk supersedes it). */
  private readonly filledDisks = new Map<SimSegmentDisk, number>();
  private readonly snapshots: RaftSnapshots | undefined;
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
  private readonly voterChurnProbability: number;
  private readonly tuning: {
    entriesPerMessageMax: number;
    inflightMessagesMax: number;
    fsyncMsMax: number;
    preVote: boolean;
    checkQuorum: boolean;
    /** Durable entries WalStorage keeps beyond the WAL (production: 1024); fewer sends reads to the WAL. */
    recentEntriesMax: number;
  };
  /** Small segments and caches, so that runs roll segments, truncate across them and read the files. */
  private readonly walLimits: WalLimits;
  /** The WAL's disk-full backoff on the simulated clock (the disks here never fill up). */
  private readonly walTimers: WalTimers;

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
      recentEntriesMax: prng.pick([1, 16, 1024]),
    };
    const segmentBytesMax = prng.pick([SEGMENT_BYTES_MIN, 64 * 1024]);
    this.walLimits = {
      ...DEFAULT_WAL_LIMITS,
      // With --snapshots, always the smallest segments (compaction deletes whole ones only); the draw is made either way.
      segmentBytesMax: options.snapshots === true ? SEGMENT_BYTES_MIN : segmentBytesMax,
      cacheBytesMax: prng.pick([0, 1024, 1024 * 1024]),
    };
    this.walTimers = {
      sleep: (ms) =>
        new Promise((resolve) =>
          this.sim.schedule(ms, () => {
            this.promisesTouched = true;
            resolve();
          }),
        ),
    };
    this.nemesisGapMsMax = prng.pick([100, 400]);
    this.leaderChurnProbability = prng.pick([0, 0.2, 0.5]);
    this.voterChurnProbability = prng.pick([0, 0.05, 0.2]);
    const { adversary } = options;
    this.attacks = adversary === undefined ? [] : (adversary.attacks ?? randomAttacks(new Prng(options.seed ^ 0x5eed), SEEDED_ATTACKS));
    this.network = new SimNetwork<Message>(this.sim, { messagesInFlightMax: 10_000 }, (to, message) => this.deliver(to, message));
    for (let id = 1; id <= options.nodes; id++) this.nodes.push(new SimRaftNode(id, this.newDisk(id), this.newStateFile(id)));
    this.snapshots =
      options.snapshots !== true
        ? undefined
        : new RaftSnapshots({
            sim: this.sim,
            prng: new Prng(options.seed * 7919 + 29),
            nodes: this.nodes,
            fault: options.snapshotFault,
            fsyncMsMax: this.tuning.fsyncMsMax,
            afterPause: (node, delayMs, action) => this.afterPause(node, delayMs, action),
            touched: () => {
              this.promisesTouched = true;
            },
            fail: (node, incarnation, error) => this.failIn(node, incarnation, error),
            voters: () => this.nodes.map((node) => node.id),
          });
  }

  async run(): Promise<RaftScenarioResult> {
    let violation: string | undefined;
    try {
      this.start();
      await this.settle();
      for (let step = 0; step < this.options.steps; step++) {
        if (!this.sim.step()) break;
        await this.settle();
        this.checkStep();
      }
      this.healAll();
      await this.settle();
      await this.runUntilQuiescent();
      this.checkFinal();
    } catch (error: unknown) {
      if (error instanceof InvariantViolation) violation = error.message;
      else violation = `exception: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    }
    return this.result(violation);
  }

  /**
   * Runs the promise continuations the last event set off (the Wal's and
   * the hard-state writer's awaits) before the next event. They touch only
   * simulated files and the simulated clock, and setImmediate fires only once
   * no microtask is left, so a seed replays exactly. Skipped when the event
   * touched no promise: no I/O completed or started.
   */
  private async settle(): Promise<void> {
    if (!this.promisesTouched) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.promisesTouched = false;
  }

  /** A fresh disk: each operation completes after a simulated delay, held back while the node is paused. */
  private newDisk(id: NodeId): SimSegmentDisk {
    return new SimSegmentDisk({ random: () => this.sim.prng.next(), completion: this.ioScheduler(id) });
  }

  private newStateFile(id: NodeId): SimRaftStateFile {
    const scheduler = this.ioScheduler(id);
    // It shares the node's disk: full while the nemesis holds that disk full.
    return new SimRaftStateFile(
      (complete) => scheduler(complete, true),
      () => this.filledDisks.has(this.node(id).disk),
    );
  }

  /** Operations that wait for the device take a simulated fsync; the others complete at once (as the next event). */
  private ioScheduler(id: NodeId): SimDiskScheduler {
    return (complete, makesDurable) =>
      this.afterPause(this.node(id), makesDurable ? this.sim.prng.between(0, this.tuning.fsyncMsMax) : 0, () => {
        this.promisesTouched = true;
        complete();
      });
  }

  private node(id: NodeId): SimRaftNode {
    const node = this.nodes[id - 1];
    assert(node !== undefined, `sim: unknown n${id}`);
    return node;
  }

  // ---- setup and driving -------------------------------------------------------

  private start(): void {
    for (const node of this.nodes) this.boot(node);
    this.scheduleClient();
    this.scheduleNemesis();
    this.scheduleAttack(0);
    this.snapshots?.start(() => this.faultsOn);
  }

  /**
   * A wiped node's start, as the LogStore's settleBlankStart: its peers'
   * answers (a node that is down or still recovering does not answer; a
   * blank one answers blank) decide between a new cluster, rejoining with the
   * peers' highest term and its vote spent, or asking again later. The
   * network's faults are not applied to these answers: the real probe retries
   * until it gets them, and only what they say matters here.
   */
  private bootBlank(node: SimRaftNode): void {
    node.incarnation++;
    node.state = "recovering";
    const incarnation = node.incarnation;
    const answers = new Map<NodeId, ProbeAnswer | undefined>();
    for (const peer of this.nodes) {
      if (peer === node) continue;
      const status = peer.raft?.status();
      const answer: ProbeAnswer | undefined = peer.blank
        ? { state: "blank", term: 0n, lastIndex: 0n, commit: 0n }
        : status === undefined
          ? undefined
          : { state: status.rejoining ? "rejoining" : "voter", term: status.term, lastIndex: status.lastIndex, commit: status.commit };
      answers.set(peer.id, answer);
    }
    const decision = decideBlankStart(node.id, answers, true);
    if (decision.kind === "wait" || decision.kind === "refuse") {
      this.sim.schedule(100, () => {
        if (node.incarnation === incarnation && node.state === "recovering") this.bootBlank(node);
      });
      return;
    }
    if (decision.kind === "bootstrap") {
      node.blank = false;
      this.boot(node);
      return;
    }
    this.sim.trace(`n${node.id} rejoins in term ${decision.hardState.term} (its peers' highest)`);
    const identity = { clusterId: "sim", replicaId: node.id, peersHash: "sim" };
    this.promisesTouched = true;
    node.stateFile.write(`n${node.id}`, { identity, hardState: decision.hardState }).then(
      () => {
        if (node.incarnation !== incarnation) return;
        node.blank = false;
        this.boot(node);
      },
      // A full disk: the LogStore's start fails and is started again (here: asks its peers again later).
      () => {
        if (node.incarnation !== incarnation) return;
        this.sim.schedule(100, () => {
          if (node.incarnation === incarnation && node.state === "recovering") this.bootBlank(node);
        });
      },
    );
  }

  /** Starts the process: the Wal recovers its files (simulated I/O, so it takes simulated time), then the driver runs. */
  private boot(node: SimRaftNode): void {
    if (node.blank && this.options.blankVoterAfterWipe !== true) {
      this.bootBlank(node);
      return;
    }
    node.incarnation++;
    node.state = "recovering";
    node.pausedUntilMs = 0;
    node.appliedIds = new Set();
    node.stateIds = [];
    node.appliedIndex = 0n;
    node.receivedSnapshots.clear();
    const incarnation = node.incarnation;
    this.promisesTouched = true;
    const observer = {
      onFailure: (error: Error) => this.failIn(node, incarnation, error),
      onDiskFull: (message: string | null) => {
        if (message === null) return;
        this.diskFullStats.walReports++;
        this.sim.trace(`n${node.id}: ${message}`);
      },
    };
    const mounted = node.disk.mount(`n${node.id}/wal`);
    const files = this.options.fileFaults?.ackBeforeDurable === true ? ackBeforeDurable(mounted) : mounted;
    Wal.openFiles(files, this.walLimits, observer, { createIfMissing: true, timers: this.walTimers }).then(
      async ({ wal, report }) => {
        if (node.incarnation !== incarnation) return;
        try {
          await this.snapshots?.reconcile(node, wal);
        } catch (error: unknown) {
          this.failIn(node, incarnation, error);
          return;
        }
        if (node.incarnation !== incarnation) return;
        try {
          this.recovered(node, wal, report);
        } catch (error: unknown) {
          this.failIn(node, incarnation, error);
        }
      },
      (error: unknown) => this.failIn(node, incarnation, error),
    );
  }

  /** An error in a promise continuation of this incarnation: ends the run (a crashed process's errors do not count). */
  private failIn(node: SimRaftNode, incarnation: number, error: unknown): void {
    if (node.incarnation !== incarnation) return;
    this.fatal ??= error instanceof Error ? error : new Error(String(error));
  }

  /**
   * The Wal is open: checks what it recovered against what was written and
   * reported durable, then starts the production driver over the production
   * ports (as openReplication and ReplicatedLog wire them).
   */
  private recovered(node: SimRaftNode, wal: Wal, report: WalOpenReport): void {
    if (report.tornTail !== null) this.tornTailsCut++;
    if (wal.lastLsn < node.durableFloor) {
      throw new InvariantViolation(`durability: n${node.id}'s WAL recovered to ${wal.lastLsn}, but ${node.durableFloor} was durable`);
    }
    const snapshot = this.snapshots === undefined ? undefined : node.snapshotFile;
    const durableHardState = node.stateFile.durable;
    // As openReplication: the snapshot holds committed entries only; the hard state's commit may lag behind it.
    const snapshotIndex = snapshot?.meta.index ?? 0n;
    const hardState = durableHardState.commit < snapshotIndex ? { ...durableHardState, commit: snapshotIndex } : durableHardState;
    const storage = new WalStorage(wal, hardState, this.tuning.recentEntriesMax);
    if (snapshot !== undefined) {
      storage.setSnapshot(snapshot.meta);
      node.restoreState(snapshot);
    }
    const logWriter = new WalLogWriter(wal, storage, sharedSilentLogger());
    node.storage = storage;
    node.logWriter = logWriter;
    node.wal = wal;
    node.durableFloor = wal.lastLsn;
    this.checker.onRecover(node.id, recoveredLog(wal), this.snapshots === undefined ? 1n : wal.firstLsn);
    const raft = new RaftDriver({
      config: {
        ...DEFAULT_RAFT_CONFIG,
        id: node.id,
        voters: this.nodes.map((each) => each.id),
        electionTicks: 10,
        heartbeatTicks: 2,
        inflightMessagesMax: this.tuning.inflightMessagesMax,
        preVote: this.tuning.preVote,
        checkQuorum: this.tuning.checkQuorum,
        entriesPerMessageMax: this.tuning.entriesPerMessageMax,
        bytesPerMessageMax: 512,
        uncommittedEntriesMax: 256,
        committedEntriesPerReadyMax: 16,
        appliedIndex: snapshotIndex,
        ...(this.options.faults === undefined ? {} : { testOnlyFaults: this.options.faults }),
      },
      storage,
      tickMs: TICK_MS,
      ports: this.simPorts(node, node.incarnation, logWriter, storage),
      application: {
        apply: (entries) => {
          for (const entry of entries) this.apply(node, entry);
        },
        observe: () => {},
      },
      onFatal: (error) => {
        this.fatal ??= error;
      },
      onMessageChecked: (message, problem) => {
        const forged = this.adversaryPending.get(message);
        this.adversaryPending.delete(message);
        if (forged === undefined) {
          if (problem !== null) this.refusedOther++;
        } else if (problem === null) {
          this.fatal ??= new InvariantViolation(`adversary: n${node.id} took the forged ${describeMessage(message)} without refusing it`);
        } else {
          this.adversaryStats.refused++;
          this.refusedByKind[forged.kind] = (this.refusedByKind[forged.kind] ?? 0) + 1;
          this.sim.trace(`n${node.id} refused the forged ${message.type}: ${problem}`);
        }
      },
      ...(this.options.driverFaults === undefined ? {} : { testOnlyFaults: this.options.driverFaults }),
    });
    // As ReplicatedLog does: the WAL's durable LSN is what the driver hears as persisted.
    wal.onDurable((durableLsn) => {
      const { truncatingTo } = node;
      node.durableFloor = truncatingTo !== undefined && truncatingTo < durableLsn ? truncatingTo : durableLsn;
      const term = wal.termAt(durableLsn);
      if (term !== undefined) raft.persisted(durableLsn, term);
    });
    node.raft = raft;
    node.state = "up";
    this.checker.onRestart(node.id, hardState.commit);
    const torn = report.tornTail === null ? "" : ", cut a torn tail";
    this.sim.trace(`n${node.id} boots (incarnation ${node.incarnation}, term ${hardState.term}, last ${wal.lastLsn}${torn})`);
    raft.start();
  }

  /**
   * The driver's ports: the production log, Storage and hard-state ports over
   * simulated files, the rest over the simulator. Every completion checks the
   * incarnation: I/O of a crashed process never completes into its successor.
   */
  private simPorts(node: SimRaftNode, incarnation: number, logWriter: WalLogWriter, storage: WalStorage): RaftDriverPorts {
    const alive = (): boolean => node.incarnation === incarnation && node.raft !== undefined;
    const identity: RaftIdentity = { clusterId: "sim", replicaId: node.id, peersHash: "sim" };
    return {
      log: {
        write: (truncateAfter, entries, done) => {
          this.promisesTouched = true;
          if (truncateAfter !== undefined && truncateAfter < storage.lastIndex()) {
            this.truncations++;
            node.truncatingTo = truncateAfter;
            if (truncateAfter < node.durableFloor) node.durableFloor = truncateAfter;
          }
          logWriter.write(truncateAfter, entries, (error) => {
            node.truncatingTo = undefined;
            if (error === undefined && alive()) {
              const first = entries[0];
              try {
                if (first !== undefined) this.checker.onWrite(node.id, entries, node.term(first.index - 1n));
              } catch (violation: unknown) {
                this.failIn(node, incarnation, violation);
                return;
              }
            }
            done(error);
          });
        },
      },
      // Its retries on a full disk wait on the simulated clock, and die with their process.
      hardState: new RaftStateFileWriter(`n${node.id}`, identity, storage, node.stateFile.write, (ms) =>
        this.sleepIn(node, incarnation, ms),
      ),
      ...(this.snapshots === undefined ? {} : { snapshots: this.snapshots.installer(node, incarnation) }),
      transport: {
        send: (messages) => {
          for (const message of messages) {
            if (message.type === "snapshot" && this.snapshots !== undefined) {
              this.snapshots.sending(node, message, (outcome) => {
                if (alive()) node.raft?.reportSnapshot(message.to, outcome);
              });
            }
            // Under attack, every message a replica sends must still fit the wire (a term past its range would not).
            if (this.attacks.length > 0 && message.type !== "snapshot") RaftMessage.encode(messageToWire(message));
            this.network.send(node.id, message.to, message);
          }
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

  /** Resolves after `ms` of simulated time, unless that incarnation of the node is gone by then (then never). */
  private sleepIn(node: SimRaftNode, incarnation: number, ms: number): Promise<void> {
    return new Promise((resolve) =>
      this.afterPause(node, ms, () => {
        if (node.incarnation !== incarnation) return;
        this.promisesTouched = true;
        resolve();
      }),
    );
  }

  /** Runs `action` after `delayMs`, or once the node's pause ends if it is paused then. */
  private afterPause(node: SimRaftNode, delayMs: number, action: () => void): void {
    this.sim.schedule(delayMs, () => {
      if (node.pausedUntilMs > this.sim.nowMs) this.afterPause(node, node.pausedUntilMs - this.sim.nowMs, action);
      else action();
    });
  }

  /** Power loss: the files keep only what they made durable (the write in flight may tear); a wipe loses them all. */
  private crash(node: SimRaftNode, wipe = false): void {
    if (node.state === "down") return;
    node.raft?.stop();
    node.raft = undefined;
    node.truncatingTo = undefined;
    node.state = "down";
    node.incarnation++;
    node.disk.crash();
    node.stateFile.crash();
    this.crashes++;
    if (wipe) {
      node.disk = this.newDisk(node.id);
      node.stateFile = this.newStateFile(node.id);
      node.durableFloor = 0n;
      node.snapshotFile = undefined;
      node.blank = true;
      this.diskWipes++;
    }
    const kept = wipe ? "loses its disk" : `keeps ${node.disk.durableFiles().size} WAL segment(s) durable`;
    this.sim.trace(`n${node.id} CRASHES (${kept})`);
  }

  private deliver(to: NodeId, message: Message): void {
    const node = this.node(to);
    if (node.raft === undefined) return;
    if (node.pausedUntilMs > this.sim.nowMs) {
      this.sim.schedule(node.pausedUntilMs - this.sim.nowMs, () => this.deliver(to, message));
      return;
    }
    this.sim.trace(describeMessage(message));
    this.snapshots?.arriving(node, message);
    node.raft.step(message);
    if (message.type === "vote") this.maybeCrashVoter(node);
  }

  private apply(node: SimRaftNode, entry: Entry): void {
    this.checker.onApply(node.id, entry);
    node.appliedIndex = entry.index;
    if (entry.kind !== "normal") return;
    const id = proposalIdOf(entry.data);
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
    // As the LogStore's append does: a full disk answers RESOURCE_EXHAUSTED before anything enters the log.
    if (node.wal !== undefined && diskFullRefusal(node.wal) !== null) {
      this.diskFullStats.refusals++;
      return;
    }
    const retry = this.unacked.length > 0 && prng.chance(0.3);
    const id = retry ? (this.unacked.shift() ?? 0) : this.nextProposalId++;
    const { raft, logWriter } = node;
    assert(raft !== undefined && logWriter !== undefined, "sim: proposing to a stopped node");
    const incarnation = node.incarnation;
    // The driver runs the proposal as one input: at once, or after the Ready it is waiting on (then
    // dropped if the node crashes first, like a request lost with its process). As the LogStore's leader
    // does, it builds the LogEntry at the index and term it will land at and hands it to the log writer.
    raft.propose((proposer) => {
      if (node.incarnation !== incarnation) return;
      const status = proposer.status();
      const entry = proposalEntry(id, status.lastIndex + 1n, status.term);
      const payload = encodeEntryPayload(entry);
      const result = proposer.propose(payload);
      if (!result.ok) {
        this.leaderHint = result.leaderHint;
        this.unacked.push(id);
        return;
      }
      assert(result.index === entry.lsn && result.term === entry.term, `sim: proposal landed at ${result.index}/${result.term}`);
      logWriter.proposed(entry, RECORD_HEADER_BYTES + payload.length);
      this.pending.set(id, { node: node.id, incarnation, index: result.index, term: result.term, sinceMs: this.sim.nowMs });
      this.sim.trace(`client: p${id} proposed at n${node.id} index ${result.index} term ${result.term}${retry ? " (retry)" : ""}`);
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
    if (this.options.diskFull === true && prng.chance(0.1)) {
      this.fillDisks(prng.chance(0.3) ? this.nodes : [leader !== undefined && prng.chance(0.5) ? leader : prng.pick(this.nodes)]);
      return;
    }
    if (choice < 3) {
      const node = choice === 0 && leader !== undefined ? leader : prng.pick(this.nodes);
      this.crashFor(node, prng.between(20, 1_500), this.options.diskWipes === true && prng.chance(0.2) && this.mayWipe(node));
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

  /**
   * Voter churn: sometimes a node that was just asked for its vote crashes
   * within its hard-state fsync and comes back at once, while the election
   * is still on. A vote acted on before it was durable (the driver's
   * send-before-persist fault) is then forgotten and can be given twice.
   */
  private maybeCrashVoter(node: SimRaftNode): void {
    const prng = this.sim.prng;
    if (!this.faultsOn || !prng.chance(this.voterChurnProbability)) return;
    const incarnation = node.incarnation;
    this.sim.schedule(prng.between(0, this.tuning.fsyncMsMax), () => {
      if (node.incarnation !== incarnation || !this.faultsOn) return;
      this.sim.trace(`nemesis: crash voter n${node.id}`);
      this.crashFor(node, prng.between(1, 30));
    });
  }

  /** No other node is without its data: blank, or rejoining (or down while it was). */
  private mayWipe(node: SimRaftNode): boolean {
    const withoutData = (other: SimRaftNode): boolean =>
      other.blank || other.raft?.status().rejoining === true || other.stateFile.durable.rejoinUntil !== undefined;
    return this.nodes.every((other) => other === node || !withoutData(other));
  }

  private crashFor(node: SimRaftNode, downMs: number, wipe = false): void {
    this.crash(node, wipe);
    this.sim.schedule(downMs, () => {
      if (node.state === "down" && this.faultsOn) this.boot(node);
    });
  }

  /** The disks of `nodes` fill up (a little room left, or none) for a while, then space returns. */
  private fillDisks(nodes: readonly SimRaftNode[]): void {
    const prng = this.sim.prng;
    const fullMs = prng.between(20, 3_000);
    for (const node of nodes) {
      const disk = node.disk;
      const fill = ++this.diskFullStats.fills;
      disk.setCapacity(disk.usedBytes + prng.pick([0, 100, 2_000]));
      this.filledDisks.set(disk, fill);
      this.sim.trace(`nemesis: n${node.id}'s disk is full for ${fullMs} ms`);
      this.sim.schedule(fullMs, () => {
        if (this.filledDisks.get(disk) !== fill) return;
        this.filledDisks.delete(disk);
        disk.setCapacity(null);
        this.sim.trace(`nemesis: n${node.id}'s disk has room again`);
      });
    }
  }

  private changeWeather(): void {
    const faults = pickNetworkFaults(this.sim.prng, RAFT_WEATHER);
    this.network.faults = faults;
    this.sim.trace(describeNetworkFaults(faults));
  }

  // ---- adversary -------------------------------------------------------------

  private scheduleAttack(next: number): void {
    const attack = this.attacks[next];
    if (attack === undefined) return;
    this.sim.schedule(attack.delayMs, () => {
      if (!this.faultsOn) return;
      this.inject(attack);
      this.scheduleAttack(next + 1);
    });
  }

  /** Steps a forged message into the target's driver, as the Replication service does once the sender is authenticated. */
  private inject(attack: Attack): void {
    const node = this.node((Math.abs(attack.target) % this.nodes.length) + 1);
    const status = node.raft?.status();
    if (node.raft === undefined || status === undefined || node.pausedUntilMs > this.sim.nowMs) return;
    const lastIndexMax = this.nodes.reduce((max, each) => (each.lastIndex() > max ? each.lastIndex() : max), 0n);
    const target = {
      id: node.id,
      term: status.term,
      lastIndex: status.lastIndex,
      lastTerm: node.term(status.lastIndex) ?? 0n,
      rejoining: status.rejoining,
    };
    const forged = forgeMessage(attack, { nodes: this.nodes.length, target, lastIndexMax });
    if (forged === undefined) return;
    const message = throughTheWire(forged);
    this.adversaryPending.set(message, { node, incarnation: node.incarnation, kind: attack.kind });
    this.adversaryStats.injected++;
    this.sim.trace(`adversary (${attack.kind}): ${describeMessage(message)}`);
    node.raft.step(message);
  }

  /** A forged message never checked was dropped with its replica's queue by a crash; a running one checks all it gets. */
  private checkAdversary(): void {
    for (const [message, { node, incarnation }] of this.adversaryPending) {
      if (node.incarnation === incarnation)
        throw new InvariantViolation(`adversary: n${node.id} never checked ${describeMessage(message)}`);
      this.adversaryStats.lostInCrash++;
    }
    this.adversaryPending.clear();
  }

  // ---- checks ----------------------------------------------------------------

  private checkStep(): void {
    if (this.fatal !== undefined) throw this.fatal;
    this.snapshots?.check();
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
    for (const disk of this.filledDisks.keys()) disk.setCapacity(null);
    this.filledDisks.clear();
    for (const node of this.nodes) if (node.state === "down") this.boot(node);
    this.sim.trace("heal: network reliable, every node running");
  }

  private async runUntilQuiescent(): Promise<void> {
    const stepsMax = this.options.quiesceStepsMax ?? DEFAULT_QUIESCE_STEPS_MAX;
    for (let step = 0; step < stepsMax; step++) {
      if (!this.sim.step()) break;
      await this.settle();
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
    this.checkAdversary();
    const reference = this.nodes[0];
    assert(reference !== undefined, "sim: no nodes");
    const committed = reference.allEntries();
    const counts = new Map<number, number>();
    for (const entry of committed) {
      if (entry.kind !== "normal") continue;
      const id = proposalIdOf(entry.data);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const lastIndex = reference.lastIndex();
    for (const node of this.nodes) {
      // With log matching checked all along, the same last (index, term) means identical logs.
      if (node.lastIndex() !== lastIndex || node.term(lastIndex) !== reference.term(lastIndex)) {
        throw new InvariantViolation(`final: n${node.id} log ends at ${node.lastIndex()}, n1 at ${lastIndex}`);
      }
      if (new Set(node.stateIds).size !== node.stateIds.length) throw new InvariantViolation(`final: n${node.id} applied an id twice`);
    }
    if (this.snapshots !== undefined) {
      // State after a snapshot must equal state by the log: every node holds the same ids in the same order.
      const state = reference.stateIds.join(",");
      for (const node of this.nodes) {
        if (node.stateIds.join(",") !== state)
          throw new InvariantViolation(
            `final: n${node.id}'s state (${node.stateIds.length} ids) differs from n1's (${reference.stateIds.length})`,
          );
      }
    }
    for (const id of this.acked) {
      // A compacted log holds the older ids in its snapshot: the applied state is the reference then.
      const inLog = (counts.get(id) ?? 0) >= 1 || (this.snapshots !== undefined && reference.appliedIds.has(id));
      if (!inLog) throw new InvariantViolation(`durability: acknowledged p${id} is not in the committed log`);
      for (const node of this.nodes) {
        if (!node.appliedIds.has(id)) throw new InvariantViolation(`durability: n${node.id} did not apply acknowledged p${id}`);
      }
    }
  }

  private result(violation: string | undefined): RaftScenarioResult {
    const { seed, steps, nodes, faults, driverFaults, fileFaults } = this.options;
    const faultFlags = [
      faults?.unsafeCommitPreviousTermEntries === true ? " --fault unsafe-commit-previous-term" : "",
      faults?.skipLogMatchingCheck === true ? " --fault skip-log-matching-check" : "",
      driverFaults?.sendBeforePersist === true ? " --fault send-before-persist" : "",
      fileFaults?.ackBeforeDurable === true ? " --fault ack-before-durable" : "",
      this.options.blankVoterAfterWipe === true ? " --fault blank-voter-after-wipe" : "",
      this.options.diskWipes === true ? " --disk-wipes" : "",
      this.options.diskFull === true ? " --disk-full" : "",
      this.options.snapshotFault !== undefined
        ? ` --fault ${this.options.snapshotFault}`
        : this.options.snapshots === true
          ? " --snapshots"
          : "",
      this.options.adversary === undefined
        ? ""
        : this.options.adversary.attacks === undefined
          ? " --adversary"
          : " (attacks: the caller's)",
    ].join("");
    let termMax = 0n;
    for (const node of this.nodes) {
      const term = node.raft?.status().term ?? node.stateFile.durable.term;
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
        diskWipes: this.diskWipes,
        tornWrites: this.nodes.reduce((sum, node) => sum + node.disk.stats.tornWrites, 0),
        tornTailsCut: this.tornTailsCut,
        truncations: this.truncations,
        termMax,
        committed: this.checker.appliedIndexMax(),
        adversary: { ...this.adversaryStats, refusedByKind: { ...this.refusedByKind } },
        refusedOther: this.refusedOther,
        diskFull: {
          ...this.diskFullStats,
          noSpaceErrors: this.nodes.reduce((sum, node) => sum + node.disk.stats.noSpaceErrors, 0),
        },
        ...(this.snapshots === undefined ? {} : { snapshots: { ...this.snapshots.stats } }),
      },
    };
  }
}

export function runRaftScenario(options: RaftScenarioOptions): Promise<RaftScenarioResult> {
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
    case "snapshot":
      return `${head} snapshot (${message.snapshot.index},t${message.snapshot.term})`;
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
