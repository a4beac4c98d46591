import type { RaftDriverPorts } from "@logplayer/logstore";
import type { Message, SnapshotMessage, SnapshotMeta } from "@logplayer/raft";
import type { Wal } from "@logplayer/wal";
import { InvariantViolation } from "./raft-checker";
import type { Prng } from "./prng";
import type { SimRaftNode } from "./sim-raft-node";
import type { Simulator } from "./simulator";

/**
 * Log compaction and InstallSnapshot in the Raft scenario (`--snapshots`), as
 * the LogStore's ReplicatedLog does them (docs/storage-lifecycle.md,
 * "Snapshots"), over the production Wal (`compactTo`, `resetAfter`) and
 * WalStorage on the simulated disk:
 *
 * - compaction: snapshot the application state at the applied index A
 *   (snapshot.bin: durable after a simulated fsync, replaced whole), tell the
 *   storage, then `Wal.compactTo(min(keep point, A))`;
 * - the leader's core sends its snapshot to a follower behind its first
 *   index; the message carries the snapshot's state across the simulated
 *   network (lost, delayed, duplicated like any other), and the transfer's
 *   outcome goes back to the leader's core;
 * - the follower's core asks to install it: snapshot.bin made durable, the WAL
 *   emptied to continue after it (`resetAfter`), the state replaced;
 * - a restart loads snapshot.bin, makes the WAL continue it (`resetAfter` when
 *   an install was cut short) and applies only the log above it.
 */

/**
 * TEST-ONLY broken lifecycle, to show the checks catch it:
 * - "install-without-persist": an installed snapshot is never written to
 *   snapshot.bin (the WAL is still emptied), so a restart finds a log that
 *   starts after entries nothing holds;
 * - "compact-above-applied": compaction deletes WAL segments above the
 *   snapshot's index (through the last written entry);
 * - "install-during-compaction": an install does not wait for a compaction
 *   under way, whose older snapshot can then land over the installed one.
 */
export type SnapshotFault = "install-without-persist" | "compact-above-applied" | "install-during-compaction";

/** snapshot.bin: the Raft metadata and the application state (the proposal ids applied, in order) at `meta.index`. */
export interface SimSnapshot {
  readonly meta: SnapshotMeta;
  readonly stateIds: readonly number[];
}

/** How long a leader waits to hear that a transfer arrived before it reports it failed. */
const TRANSFER_TIMEOUT_MS = 300;

export interface SnapshotEnv {
  readonly sim: Simulator;
  /** The lifecycle's own draws (when to compact, how much to keep), apart from the scenario's. */
  readonly prng: Prng;
  readonly nodes: readonly SimRaftNode[];
  readonly fault: SnapshotFault | undefined;
  readonly fsyncMsMax: number;
  /** Runs `action` after `delayMs`, later if the node is paused then. */
  afterPause(node: SimRaftNode, delayMs: number, action: () => void): void;
  /** I/O started or completed: promise continuations must run before the next event. */
  touched(): void;
  /** An error in a continuation of that incarnation: ends the run. */
  fail(node: SimRaftNode, incarnation: number, error: unknown): void;
  voters(): readonly number[];
}

export class RaftSnapshots {
  readonly stats = {
    snapshotsTaken: 0,
    compactions: 0,
    segmentsDeleted: 0,
    snapshotsSent: 0,
    snapshotsInstalled: 0,
    restartsFromSnapshot: 0,
  };
  /** A snapshot message on the wire, with the state it carries and whether it arrived. */
  readonly #inFlight = new WeakMap<Message, { readonly snapshot: SimSnapshot; delivered: boolean }>();
  readonly #compacting = new Set<SimRaftNode>();
  /** Nodes whose WAL is being emptied by an install (its first LSN is undefined until that ends). */
  readonly #installing = new Set<Wal>();
  /** Nodes with an install under way, by the incarnation that began it: a compaction waits for it (one chain). */
  readonly #installPending = new Map<SimRaftNode, number>();

  constructor(private readonly env: SnapshotEnv) {}

  /** Every so often a running node compacts its log. */
  start(faultsOn: () => boolean): void {
    const { sim, prng } = this.env;
    const loop = (): void => {
      sim.schedule(prng.between(20, 300), () => {
        const node = prng.pick(this.env.nodes);
        if (node.state === "up" && node.pausedUntilMs <= sim.nowMs) this.compact(node);
        if (faultsOn() || prng.chance(0.5)) loop();
      });
    };
    loop();
  }

  /** compactLogTo: snapshot at the applied index (unless the newest is there already), then delete WAL segments below. */
  compact(node: SimRaftNode): void {
    const wal = node.wal;
    const storage = node.storage;
    // Not while an install empties the WAL (its first LSN is undefined until that ends).
    if (wal === undefined || storage === undefined || this.#compacting.has(node) || this.#installing.has(wal)) return;
    if (this.#installPending.get(node) === node.incarnation && this.env.fault !== "install-during-compaction") return;
    const applied = node.appliedIndex;
    const current = node.snapshotFile?.meta.index ?? 0n;
    if (applied === 0n) return;
    const term = storage.term(applied);
    if (term === undefined) return;
    const incarnation = node.incarnation;
    this.#compacting.add(node);
    const snapshot: SimSnapshot = { meta: { index: applied, term, voters: this.env.voters(), learners: [] }, stateIds: [...node.stateIds] };
    const keep = BigInt(this.env.prng.pick([0, 0, 2, 16]));
    const persist = (done: () => void): void => {
      if (applied <= current) {
        done();
        return;
      }
      this.env.afterPause(node, this.env.prng.between(0, this.env.fsyncMsMax), () => {
        if (node.incarnation !== incarnation) return;
        node.snapshotFile = snapshot;
        storage.setSnapshot(snapshot.meta);
        this.stats.snapshotsTaken++;
        this.env.sim.trace(`n${node.id} snapshot at ${applied} (t${term})`);
        done();
      });
    };
    persist(() => {
      const index = node.snapshotFile?.meta.index ?? 0n;
      const target = this.env.fault === "compact-above-applied" ? wal.lastLsn : index - keep;
      this.env.touched();
      wal.compactTo(target < 0n ? 0n : target).then(
        (result) => {
          this.env.touched();
          this.#compacting.delete(node);
          if (node.incarnation !== incarnation) return;
          this.stats.compactions++;
          this.stats.segmentsDeleted += result.segmentsDeleted;
          if (result.segmentsDeleted > 0) this.env.sim.trace(`n${node.id} compacts its WAL: first LSN ${wal.firstLsn}`);
        },
        (error: unknown) => {
          this.#compacting.delete(node);
          this.env.fail(node, incarnation, error);
        },
      );
    });
  }

  /** A snapshot message leaves the leader: it carries the leader's snapshot.bin; the outcome is reported back. */
  sending(from: SimRaftNode, message: SnapshotMessage, report: (outcome: "finished" | "failed") => void): void {
    const snapshot = from.snapshotFile;
    if (snapshot === undefined || snapshot.meta.index !== message.snapshot.index) {
      report("failed");
      return;
    }
    const transfer = { snapshot, delivered: false };
    this.#inFlight.set(message, transfer);
    this.stats.snapshotsSent++;
    this.env.sim.schedule(TRANSFER_TIMEOUT_MS, () => report(transfer.delivered ? "finished" : "failed"));
  }

  /** A snapshot message reaches a follower: kept (at most the two newest) until its core asks to install it. */
  arriving(to: SimRaftNode, message: Message): void {
    if (message.type !== "snapshot") return;
    const transfer = this.#inFlight.get(message);
    if (transfer === undefined) return;
    transfer.delivered = true;
    to.receivedSnapshots.set(message.snapshot.index, transfer.snapshot);
    const indexes = [...to.receivedSnapshots.keys()].sort((a, b) => (a < b ? 1 : -1));
    for (const old of indexes.slice(2)) to.receivedSnapshots.delete(old);
  }

  /** Ready.snapshot: snapshot.bin durable, the WAL emptied to continue after it, then the state replaced. */
  installer(node: SimRaftNode, incarnation: number): NonNullable<RaftDriverPorts["snapshots"]> {
    return {
      install: (meta, done) => {
        const received = node.receivedSnapshots.get(meta.index);
        const wal = node.wal;
        const storage = node.storage;
        if (received === undefined || received.meta.term !== meta.term || wal === undefined || storage === undefined) {
          done(new Error(`asked to install snapshot ${meta.term}/${meta.index}, which n${node.id} did not receive`));
          return;
        }
        // As ReplicatedLog: an install waits for a compaction under way (one chain runs both), else a compaction
        // begun at an older applied index could write its snapshot over this one after the WAL was emptied.
        this.#installPending.set(node, incarnation);
        const finish = done;
        done = (error?: Error): void => {
          if (this.#installPending.get(node) === incarnation) this.#installPending.delete(node);
          finish(error);
        };
        const whenIdle = (run: () => void): void => {
          if (!this.#compacting.has(node) || this.env.fault === "install-during-compaction") run();
          else this.env.sim.schedule(1, () => (node.incarnation === incarnation ? whenIdle(run) : undefined));
        };
        whenIdle(() =>
          this.env.afterPause(node, this.env.prng.between(0, this.env.fsyncMsMax), () => {
            if (node.incarnation !== incarnation) return;
            if (this.env.fault !== "install-without-persist") node.snapshotFile = received;
            this.env.touched();
            this.#installing.add(wal);
            wal.resetAfter(meta.index).then(
              () => {
                this.env.touched();
                this.#installing.delete(wal);
                if (node.incarnation !== incarnation) return;
                storage.forgetAll();
                storage.setSnapshot(meta);
                node.restoreState(received);
                node.durableFloor = meta.index;
                node.receivedSnapshots.clear();
                this.stats.snapshotsInstalled++;
                this.env.sim.trace(`n${node.id} installs snapshot ${meta.index} (t${meta.term})`);
                done();
              },
              (error: unknown) => {
                this.#installing.delete(wal);
                done(error instanceof Error ? error : new Error(String(error)));
              },
            );
          }),
        );
      },
    };
  }

  /**
   * After every step: a restart now must find each running node's log
   * continuing its durable snapshot (the WAL's first LSN at most one past the
   * snapshot's index); otherwise the entries in between are held nowhere.
   */
  check(): void {
    for (const node of this.env.nodes) {
      const wal = node.wal;
      if (node.state !== "up" || wal === undefined || this.#installing.has(wal)) continue;
      const covered = node.snapshotFile?.meta.index ?? 0n;
      if (wal.firstLsn > covered + 1n) {
        throw new InvariantViolation(
          `durability: n${node.id}'s WAL starts at LSN ${wal.firstLsn} but its durable snapshot ends at ${covered}: ` +
            `a restart would lose ${covered + 1n}..${wal.firstLsn - 1n}`,
        );
      }
    }
  }

  /**
   * At start, as openReplication's reconcileWithSnapshot: the WAL must hold
   * the snapshot's last entry with its term, or start just after it; an
   * install cut short left another log, which is emptied to continue after
   * the snapshot. A WAL that starts further on, or one that starts past 1
   * with no snapshot, has lost entries: the LogStore refuses to start.
   */
  async reconcile(node: SimRaftNode, wal: Wal): Promise<void> {
    const snapshot = node.snapshotFile;
    if (snapshot === undefined) {
      if (wal.firstLsn > 1n) {
        throw new InvariantViolation(
          `durability: n${node.id}'s WAL starts at LSN ${wal.firstLsn} and no snapshot holds the entries before it`,
        );
      }
      return;
    }
    const { index, term } = snapshot.meta;
    if (wal.firstLsn > index + 1n) {
      throw new InvariantViolation(`durability: n${node.id}'s WAL starts at LSN ${wal.firstLsn} but its snapshot ends at ${index}`);
    }
    this.stats.restartsFromSnapshot++;
    if (wal.termAt(index) === term || wal.firstLsn === index + 1n) return;
    this.env.touched();
    await wal.resetAfter(index);
    this.env.touched();
  }
}
