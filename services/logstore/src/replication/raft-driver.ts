import { assert } from "@logplayer/common";
import { checkIncomingMessage, RaftNode } from "@logplayer/raft";
import type {
  ConfigChange,
  Entry,
  Membership,
  HardState,
  Message,
  NodeId,
  ProposeResult,
  RaftConfig,
  RaftStatus,
  Ready,
  SnapshotMeta,
  SnapshotOutcome,
  Storage,
} from "@logplayer/raft";
import { entryPayloadProblem } from "./wal-storage";

/**
 * Reports that an I/O step finished. Called once, synchronously or later;
 * with an error the driver stops and reports it through onFatal.
 */
export type Completion = (error?: Error) => void;

/** The log's write side (the WAL, or a simulated disk). */
export interface RaftLogWriter {
  /**
   * Drops every entry above `truncateAfter` (when set, and only if the log
   * holds any), then hands `entries` to the log. When `done` runs they must be
   * readable through the Storage port; their durability is reported later
   * through RaftDriver.persisted(). `entries` is owned by the core: do not mutate.
   */
  write(truncateAfter: bigint | undefined, entries: readonly Entry[], done: Completion): void;
}

/**
 * Installs a leader's snapshot on a follower (Ready.snapshot): the state it
 * names, which the adapter received with the snapshot message, made durable,
 * and the log emptied to continue after it. `done` runs once all of that is
 * durable and visible through the Storage port.
 */
export interface SnapshotInstaller {
  install(snapshot: SnapshotMeta, done: Completion): void;
}

/** Where term, vote and commit survive a crash (raft-state.json, or a simulated disk). */
export interface HardStateWriter {
  /**
   * Records `state` (visible to the Storage port at once). When `mustSync`
   * (term or vote changed), `done` runs only once it is durable; otherwise it
   * may be written lazily and `done` may run at once.
   */
  save(state: HardState, mustSync: boolean, done: Completion): void;
}

/** The network to the other voters: lossy, may reorder; Raft resends what matters. */
export interface RaftTransport {
  send(messages: readonly Message[]): void;
  /** The membership changed (Ready.membership; once at start too): open links to new members, close removed ones. */
  membershipChanged?(membership: Membership): void;
}

/** Time, as ticks: the driver never reads a clock. */
export interface RaftClock {
  /** Calls `onTick` every `intervalMs` until the returned function is called. */
  every(intervalMs: number, onTick: () => void): () => void;
  /**
   * Runs `run` soon, once, after the inputs arriving meanwhile have queued
   * (so that proposals made in one turn of the event loop share one Ready
   * and one WAL write). A simulator may run it at once.
   */
  soon(run: () => void): void;
}

/** Randomness for election timeouts: the driver never calls Math.random. */
export interface RaftRandom {
  /** An integer in [0, bound). */
  int(bound: number): number;
}

/** The state machine the log feeds. */
export interface RaftApplication {
  /** Committed entries, in index order, each durable here; called before the Ready is advanced. */
  apply(entries: readonly Entry[]): void;
  /** The node's status after every Ready: leadership changes are noticed here. */
  observe(status: RaftStatus): void;
}

export interface RaftDriverPorts {
  readonly log: RaftLogWriter;
  readonly hardState: HardStateWriter;
  readonly transport: RaftTransport;
  readonly clock: RaftClock;
  readonly random: RaftRandom;
  /** Absent where snapshots are never installed: a Ready asking for one is then fatal. */
  readonly snapshots?: SnapshotInstaller;
}

/**
 * Test-only fault switches of the driver, like the core's TestOnlyFaults: each
 * breaks the Ready order on purpose so that the simulator can be shown to
 * catch it. Never set outside tests.
 */
export interface RaftDriverTestOnlyFaults {
  /** Send a Ready's messages before its hard state and log writes are done (breaks "persist before send"). */
  readonly sendBeforePersist?: boolean;
}

export interface RaftDriverOptions {
  readonly config: Omit<RaftConfig, "randomInt">;
  /** The core's read-only view of the log; must hold only durable state now (what survived the last stop). */
  readonly storage: Storage;
  readonly tickMs: number;
  readonly ports: RaftDriverPorts;
  readonly application: RaftApplication;
  /** A failed write or a broken invariant: the process must not carry on. The driver has stopped. */
  readonly onFatal: (error: Error) => void;
  /** A message refused before the core saw it (see step). Default: ignored. */
  readonly onMessageRefused?: (reason: string, message: Message) => void;
  /** Every message when its check ran: `problem` null when it went on to the core (the simulator's accounting). */
  readonly onMessageChecked?: (message: Message, problem: string | null) => void;
  readonly testOnlyFaults?: RaftDriverTestOnlyFaults;
}

/** What a proposal input may do with the node: read its status and propose. */
export type RaftProposer = Pick<RaftNode, "status" | "propose">;

/** Inputs waiting in the queue at most: past it is a bug (every source of inputs is bounded upstream). */
const INPUTS_QUEUED_MAX = 1_000_000;

/**
 * Drives a RaftNode over its ports. Every input (tick, message, proposal,
 * durability report) runs through one queue, so nothing reaches the node
 * between ready() and advance() even while a Ready waits for an fsync or a
 * truncation. Each Ready is carried out in the order its contract requires
 * (raft-node.ts): hard state durable, then the log written, then messages
 * sent, then committed entries applied, then advance(). No clock, no
 * randomness, no I/O of its own: all of it comes through the ports.
 */
export class RaftDriver {
  readonly #options: RaftDriverOptions;
  readonly #node: RaftNode;
  #inputs: (() => void)[] = [];
  /** True while the loop runs or a Ready waits for its I/O: inputs then only queue. */
  #busy = false;
  #tickQueued = false;
  /** A run is scheduled through clock.soon() and has not started yet. */
  #runScheduled = false;
  #stopClock: (() => void) | undefined;
  #stopped = false;

  #messagesRefused = 0;

  constructor(options: RaftDriverOptions) {
    this.#options = options;
    const { random } = options.ports;
    this.#node = new RaftNode({ ...options.config, randomInt: (bound) => random.int(bound) }, options.storage);
  }

  #onMessageRefused(reason: string, message: Message): void {
    this.#options.onMessageRefused?.(reason, message);
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Starts ticking. A single voter campaigns at once: it wins alone, so waiting a timeout gains nothing. */
  start(): void {
    assert(this.#stopClock === undefined && !this.#stopped, "raft driver: started twice");
    this.#stopClock = this.#options.ports.clock.every(this.#options.tickMs, () => this.#queueTick());
    this.#options.ports.transport.membershipChanged?.(this.#node.membership());
    const { voters, id } = this.#options.config;
    if (voters.length === 1 && voters[0] === id) {
      // At once rather than soon(): it leads (and takes appends, which wait for its no-op) when start() returns.
      this.#inputs.push(() => this.#node.campaign());
      this.#run();
    }
  }

  /** Stops everything: queued inputs and the rest of a Ready in progress are dropped, as a crash would. */
  stop(): void {
    this.#stopped = true;
    this.#inputs = [];
    this.#stopClock?.();
  }

  /**
   * A message off the network. Checked against the node's state when its
   * turn comes, so that nothing a correct peer could not have sent reaches a
   * core assertion; a refused message is dropped (Raft tolerates a lost
   * message), counted and reported. The LogStore's log holds LogEntries: an
   * append's entries must carry the LogEntry at their index and term (the
   * log port asserts it once the core has taken them).
   */
  step(message: Message): void {
    this.#enqueue(() => {
      const status = this.#node.status();
      const problem =
        checkIncomingMessage(message, {
          id: status.id,
          voters: this.#node.membership().voters,
          learners: this.#node.membership().learners,
          lastIndex: status.lastIndex,
          rejoining: status.rejoining,
        }) ?? (message.type === "append" ? firstEntryProblem(message.entries) : null);
      this.#options.onMessageChecked?.(message, problem);
      if (problem !== null) {
        this.#messagesRefused++;
        this.#onMessageRefused(problem, message);
        return;
      }
      this.#node.step(message);
    });
  }

  /** Messages dropped by checkIncomingMessage since start. */
  get messagesRefused(): number {
    return this.#messagesRefused;
  }

  /**
   * The log reports every entry up to `index` durable, the one at `index`
   * having `term`. Run at once when the driver is idle, not soon(): a single
   * voter commits and applies in the turn its write became durable, and the
   * answers it resolves go out in that turn too instead of one turn later.
   */
  persisted(index: bigint, term: bigint): void {
    this.#enqueue(() => this.#node.persisted(index, term), "now");
  }

  /** The transfer of a snapshot to follower `to` ended (see RaftNode.reportSnapshot). */
  reportSnapshot(to: NodeId, outcome: SnapshotOutcome): void {
    this.#enqueue(() => this.#node.reportSnapshot(to, outcome));
  }

  /** Runs `input` in the queue, where it may read the node's status and propose; ignored once stopped. */
  propose(input: (node: RaftProposer) => void): void {
    this.#enqueue(() => input(this.#node));
  }

  /** Proposes `data` as one input; `onResult` runs when the input does. */
  proposeData(data: Uint8Array, onResult: (result: ProposeResult) => void): void {
    this.#enqueue(() => onResult(this.#node.propose(data)));
  }

  /** Proposes a membership change as one input; `onResult` runs when the input does. */
  proposeConfigChange(change: ConfigChange, onResult: (result: ProposeResult) => void): void {
    this.#enqueue(() => onResult(this.#node.proposeConfigChange(change)));
  }

  status(): RaftStatus {
    return this.#node.status();
  }

  /** The membership in effect here (the latest config entry of the log, committed or not). */
  membership(): Membership {
    return this.#node.membership();
  }

  /** The membership as of `index` (what a snapshot at `index` records), or undefined outside the log. */
  membershipAt(index: bigint): Membership | undefined {
    return this.#node.membershipAt(index);
  }

  progressOf(id: NodeId): ReturnType<RaftNode["progressOf"]> {
    return this.#node.progressOf(id);
  }

  // ---- the input queue --------------------------------------------------------

  #queueTick(): void {
    // A slow Ready must not pile up ticks: one queued tick at a time.
    if (this.#tickQueued) return;
    this.#tickQueued = true;
    this.#enqueue(() => {
      this.#tickQueued = false;
      this.#node.tick();
    });
  }

  /** Queues `input`; runs the queue `soon` (inputs of one turn share a Ready) or, when idle, `now`. */
  #enqueue(input: () => void, when: "soon" | "now" = "soon"): void {
    if (this.#stopped) return;
    assert(this.#inputs.length < INPUTS_QUEUED_MAX, "raft driver: input queue over its bound");
    this.#inputs.push(input);
    if (this.#busy) return;
    if (when === "now") {
      // A run already scheduled then finds this turn's inputs taken: it does nothing.
      this.#run();
      return;
    }
    if (this.#runScheduled) return;
    this.#runScheduled = true;
    this.#options.ports.clock.soon(() => {
      this.#runScheduled = false;
      this.#run();
    });
  }

  /**
   * Runs inputs and Readies until neither is left or a Ready waits for I/O
   * (then the I/O's completion resumes it). Re-entrant calls only queue.
   */
  #run(): void {
    if (this.#busy || this.#stopped) return;
    this.#busy = true;
    try {
      while (!this.#stopped) {
        const inputs = this.#inputs;
        this.#inputs = [];
        for (const input of inputs) input();
        if (!this.#node.hasReady()) {
          if (this.#inputs.length === 0) break;
          continue;
        }
        if (!this.#handleReady(this.#node.ready())) return;
      }
    } catch (err: unknown) {
      this.#fail(err);
    }
    this.#busy = false;
  }

  /**
   * Steps 1 and 2 of the Ready contract, then the rest. Returns true when it
   * finished synchronously; false when it waits for I/O and will resume the loop itself.
   */
  #handleReady(ready: Ready): boolean {
    if (this.#options.testOnlyFaults?.sendBeforePersist === true) this.#options.ports.transport.send(ready.messages);
    let waiting = false;
    let finished = false;
    this.#persist(ready, () => {
      finished = true;
      if (!waiting) return;
      // Resumed by an I/O completion: finish this Ready, then carry on with what queued meanwhile.
      try {
        this.#finishReady(ready);
      } catch (err: unknown) {
        this.#fail(err);
        return;
      }
      this.#busy = false;
      this.#run();
    });
    if (finished) {
      this.#finishReady(ready);
      return true;
    }
    waiting = true;
    return false;
  }

  /** 1. hard state (durable when term or vote changed); 2. the log (a snapshot, a truncation, then entries). */
  #persist(ready: Ready, then: () => void): void {
    const { log, hardState, snapshots } = this.#options.ports;
    const writeLog = (): void => {
      if (ready.truncateAfter === undefined && ready.entries.length === 0) then();
      else log.write(ready.truncateAfter, ready.entries, this.#resume(then));
    };
    const installSnapshot = (): void => {
      const snapshot = ready.snapshot;
      if (snapshot === undefined) {
        writeLog();
        return;
      }
      assert(snapshots !== undefined, "raft driver: a snapshot to install and no installer");
      snapshots.install(snapshot, this.#resume(writeLog));
    };
    if (ready.hardState === undefined) installSnapshot();
    else hardState.save(ready.hardState, ready.hardStateMustSync, this.#resume(installSnapshot));
  }

  /** 3. send, 4. apply, 5. advance. */
  #finishReady(ready: Ready): void {
    if (ready.membership !== undefined) this.#options.ports.transport.membershipChanged?.(ready.membership);
    if (this.#options.testOnlyFaults?.sendBeforePersist !== true) this.#options.ports.transport.send(ready.messages);
    if (ready.committedEntries.length > 0) this.#options.application.apply(ready.committedEntries);
    this.#node.advance(ready);
    this.#options.application.observe(this.#node.status());
  }

  /** Wraps a continuation for a port: dropped after stop(), fatal on error. */
  #resume(then: () => void): Completion {
    let called = false;
    return (error?: Error) => {
      assert(!called, "raft driver: a port completed twice");
      called = true;
      if (this.#stopped) return;
      if (error !== undefined) {
        this.#fail(error);
        return;
      }
      try {
        then();
      } catch (err: unknown) {
        this.#fail(err);
      }
    };
  }

  #fail(err: unknown): void {
    if (this.#stopped) return;
    this.stop();
    this.#options.onFatal(err instanceof Error ? err : new Error(String(err)));
  }
}

/** The first entry of an append whose payload no correct leader could send (see entryPayloadProblem), or null. */
function firstEntryProblem(entries: readonly Entry[]): string | null {
  for (const entry of entries) {
    const problem = entryPayloadProblem(entry);
    if (problem !== null) return problem;
  }
  return null;
}
