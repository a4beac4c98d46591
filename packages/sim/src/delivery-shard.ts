import { assert } from "@logplayer/common";
import { applyMutation, planBatch } from "@logplayer/delivery";
import type { Part } from "@logplayer/proto";
import type { SimNodeId } from "./network";
import { SimDisk } from "./sim-disk";
import { shardNode, type DeliveryEnv, type DeliveryMessage } from "./delivery-messages";
import type { ShardView } from "./delivery-checker";
import { ShardBackups } from "./delivery-lifecycle";

/**
 * TEST-ONLY broken shard decisions, to show the checker can fail:
 * - "apply-any-newer": applies every part with lsn > applied, ignoring prevLsn;
 * - "non-atomic-applied-lsn": stores the applied LSN in a write separate from
 *   the data, so a crash can keep one and lose the other.
 */
export type BrokenDecision = "apply-any-newer" | "non-atomic-applied-lsn";

interface ShardDurable {
  appliedLsn: bigint;
  readonly kv: Map<string, Uint8Array>;
  /** Ghost: LSNs of the applied non-dummy parts, persisted with the data (see ShardView). */
  readonly appliedParts: bigint[];
}

/** One SQLite commit: its data (key, new value or undefined = deleted) and/or the applied LSN. */
interface ShardCommit {
  readonly writes: readonly (readonly [string, Uint8Array | undefined])[];
  readonly parts: readonly bigint[];
  readonly appliedLsn: bigint | null;
}

function applyCommit(state: ShardDurable, commit: ShardCommit): ShardDurable {
  for (const [key, value] of commit.writes) {
    if (value === undefined) state.kv.delete(key);
    else state.kv.set(key, value);
  }
  state.appliedParts.push(...commit.parts);
  if (commit.appliedLsn !== null) state.appliedLsn = commit.appliedLsn;
  return state;
}

export interface SimShardConfig {
  /** Unsynced commits kept before the disk refuses (a runaway scenario fails loudly). */
  readonly pendingCommitsMax: number;
  /** Relaxed sync: a background checkpoint every [1, syncEveryMsMax] ms makes a prefix of the commits durable. */
  readonly syncEveryMsMax: number;
  /** Gets waiting for their minLsn; more are refused (the client retries). */
  readonly waitingGetsMax: number;
  readonly getWaitMsMax: number;
  readonly brokenDecision?: BrokenDecision;
  /** Runs with --backup-dir: takes backups, and its restorable LSN is held at the newest one. */
  readonly backupsOn?: boolean;
}

interface WaitingGet {
  readonly from: SimNodeId;
  readonly getId: number;
  readonly key: string;
  readonly minLsn: bigint;
  readonly sinceMs: number;
}

/**
 * A shard: durable {appliedLsn, kv} on a SimDisk whose crash loses the
 * last unsynced commits (SQLite with synchronous=NORMAL), applying batches
 * with the REAL planBatch + applyMutation, in one commit per batch.
 */
export class SimShard implements ShardView {
  incarnation = 0;
  up = false;
  appliedLsn = 0n;
  kv = new Map<string, Uint8Array>();
  appliedParts: bigint[] = [];
  readonly disk: SimDisk<ShardDurable, ShardCommit>;
  /** Streams opened (hello) in this incarnation. */
  #streams = new Map<number, SimNodeId>();
  #waitingGets: WaitingGet[] = [];
  #lastWriteId = 0;
  #lastSyncedId = 0;
  readonly node: SimNodeId;
  stats = { batches: 0, applied: 0, duplicates: 0, gaps: 0, crashes: 0, backups: 0, restores: 0 };
  /** Its --backup-dir, on another disk: kept through crashes and the loss of the database. */
  readonly backups: ShardBackups;

  constructor(
    readonly index: number,
    private readonly env: DeliveryEnv,
    private readonly config: SimShardConfig,
  ) {
    this.node = shardNode(index);
    this.disk = new SimDisk<ShardDurable, ShardCommit>(
      { appliedLsn: 0n, kv: new Map(), appliedParts: [] },
      applyCommit,
      config.pendingCommitsMax,
    );
    this.backups = new ShardBackups(config.backupsOn ?? false);
  }

  /** The applied LSN a power cut now would leave (what the last checkpoint made durable). */
  get durableLsn(): bigint {
    return this.disk.durableState().appliedLsn;
  }

  /** What Status answers as restorable_lsn (the production rule). */
  get restorableLsn(): bigint {
    return this.backups.restorableLsn(this.durableLsn);
  }

  /** An online backup: a copy of the live database (commits not yet checkpointed included), durable on its own disk. */
  takeBackup(): boolean {
    if (!this.up || !this.backups.on) return false;
    this.backups.add({ appliedLsn: this.appliedLsn, kv: new Map(this.kv), appliedParts: [...this.appliedParts] });
    this.stats.backups += 1;
    this.env.sim.trace(`shard ${this.index} backup at LSN ${this.appliedLsn}`);
    return true;
  }

  /**
   * The database file is lost while the shard is down; it comes back from its
   * newest backup (--restore-from), or empty when none was taken (its
   * restorable LSN was then 0, so nothing it needs was trimmed).
   */
  loseDatabase(): void {
    assert(!this.up && this.backups.on, `shard ${this.index}: database lost while running or without backups`);
    const backup = this.backups.newest;
    this.disk.writeSynced(() => ({
      appliedLsn: backup?.appliedLsn ?? 0n,
      kv: new Map(backup?.kv ?? []),
      appliedParts: [...(backup?.appliedParts ?? [])],
    }));
    this.stats.restores += 1;
    this.env.sim.trace(
      `shard ${this.index} LOSES its database, restored from ${backup === undefined ? "nothing" : `LSN ${backup.appliedLsn}`}`,
    );
  }

  boot(): void {
    assert(!this.up, `shard ${this.index} booted twice`);
    const durable = this.disk.durableState();
    this.up = true;
    this.incarnation += 1;
    this.appliedLsn = durable.appliedLsn;
    this.kv = new Map(durable.kv);
    this.appliedParts = [...durable.appliedParts];
    this.#streams = new Map();
    this.#waitingGets = [];
    this.env.checker.onShardRestart(this.index);
    this.env.sim.trace(`shard ${this.index} boots (incarnation ${this.incarnation}, applied ${this.appliedLsn})`);
    this.env.checker.checkShard(this);
    this.#scheduleSync(this.incarnation);
  }

  /** Power loss: every unsynced commit is gone. */
  crash(): void {
    if (!this.up) return;
    this.up = false;
    this.incarnation += 1;
    this.stats.crashes += 1;
    this.disk.crash();
    this.#lastSyncedId = this.#lastWriteId;
    this.env.sim.trace(`shard ${this.index} CRASHES (applied ${this.appliedLsn}, durable ${this.disk.durableState().appliedLsn})`);
  }

  receive(from: SimNodeId, message: DeliveryMessage): void {
    if (!this.up) return;
    switch (message.kind) {
      case "hello":
        this.#streams.set(message.streamId, from);
        this.#reply(from, {
          kind: "hello-reply",
          streamId: message.streamId,
          appliedLsn: this.appliedLsn,
          shardIncarnation: this.incarnation,
        });
        return;
      case "batch":
        if (this.#streams.get(message.streamId) !== from) return; // not a stream of this incarnation
        this.env.checker.checkCommitFence(this.index, message.parts, message.commitLsn);
        this.#applyBatch(from, message.streamId, message.parts);
        return;
      case "get":
        this.#get(from, message.getId, message.key, message.minLsn);
        return;
      default:
        assert(false, `shard ${this.index}: unexpected ${message.kind}`);
    }
  }

  #applyBatch(from: SimNodeId, streamId: number, parts: readonly Part[]): void {
    this.stats.batches += 1;
    const plan =
      this.config.brokenDecision === "apply-any-newer" ? planAnyNewer(this.appliedLsn, parts) : planBatch(this.appliedLsn, parts);
    const writes = new Map<string, Uint8Array | undefined>();
    const applied: bigint[] = [];
    for (const part of plan.apply) {
      for (const mutation of part.mutations) {
        const current = writes.has(mutation.key) ? writes.get(mutation.key) : this.kv.get(mutation.key);
        writes.set(mutation.key, applyMutation(current, mutation));
      }
      if (part.mutations.length > 0) applied.push(part.lsn);
    }
    if (plan.apply.length > 0) this.#commit([...writes], applied, plan.appliedLsnAfter);
    this.stats.applied += plan.apply.length;
    this.stats.duplicates += plan.duplicates;
    const range = parts.length === 0 ? "[]" : `[${parts[0]?.lsn}..${parts.at(-1)?.lsn}]`;
    this.env.sim.trace(
      `shard ${this.index} <- batch s${streamId} ${range}: apply ${plan.apply.length}, dup ${plan.duplicates}${plan.gap ? `, GAP at ${plan.gap.prevLsn}>${plan.gap.lsn}` : ""} -> applied ${this.appliedLsn}`,
    );
    this.env.checker.checkShard(this, writes.keys());
    if (plan.gap !== undefined) {
      this.stats.gaps += 1;
      this.#reply(from, { kind: "gap", streamId, report: { appliedLsn: this.appliedLsn, lsn: plan.gap.lsn, prevLsn: plan.gap.prevLsn } });
    } else {
      this.#reply(from, { kind: "ack", streamId, appliedLsn: this.appliedLsn });
    }
    this.#answerGets();
  }

  /** One SQLite transaction: data and applied LSN together (or split, when broken on purpose). */
  #commit(writes: (readonly [string, Uint8Array | undefined])[], parts: bigint[], appliedLsnAfter: bigint): void {
    for (const [key, value] of writes) {
      if (value === undefined) this.kv.delete(key);
      else this.kv.set(key, value);
    }
    this.appliedParts.push(...parts);
    this.appliedLsn = appliedLsnAfter;
    if (this.config.brokenDecision === "non-atomic-applied-lsn") {
      this.disk.write({ writes, parts, appliedLsn: null });
      this.#lastWriteId = this.disk.write({ writes: [], parts: [], appliedLsn: appliedLsnAfter });
    } else {
      this.#lastWriteId = this.disk.write({ writes, parts, appliedLsn: appliedLsnAfter });
    }
  }

  #scheduleSync(incarnation: number): void {
    this.env.sim.schedule(this.env.sim.prng.between(1, this.config.syncEveryMsMax), () => {
      if (this.incarnation !== incarnation || !this.up) return;
      // A checkpoint makes some prefix of the commits durable, not necessarily all of them.
      const prng = this.env.sim.prng;
      const durableId = prng.chance(0.5) ? this.#lastWriteId : prng.between(this.#lastSyncedId, this.#lastWriteId);
      this.disk.sync(durableId);
      this.#lastSyncedId = durableId;
      this.#expireGets();
      this.#scheduleSync(incarnation);
    });
  }

  #get(from: SimNodeId, getId: number, key: string, minLsn: bigint): void {
    if (this.appliedLsn >= minLsn) {
      this.#reply(from, { kind: "get-reply", getId, key, minLsn, value: this.kv.get(key), appliedLsn: this.appliedLsn });
    } else if (this.#waitingGets.length < this.config.waitingGetsMax) {
      this.#waitingGets.push({ from, getId, key, minLsn, sinceMs: this.env.sim.nowMs });
    }
  }

  #answerGets(): void {
    const still: WaitingGet[] = [];
    for (const get of this.#waitingGets) {
      if (this.appliedLsn < get.minLsn) still.push(get);
      else
        this.#reply(get.from, {
          kind: "get-reply",
          getId: get.getId,
          key: get.key,
          minLsn: get.minLsn,
          value: this.kv.get(get.key),
          appliedLsn: this.appliedLsn,
        });
    }
    this.#waitingGets = still;
  }

  /** A get that waited too long is dropped (DEADLINE_EXCEEDED; the client gives up). */
  #expireGets(): void {
    const now = this.env.sim.nowMs;
    this.#waitingGets = this.#waitingGets.filter((get) => now - get.sinceMs < this.config.getWaitMsMax);
  }

  #reply(to: SimNodeId, message: DeliveryMessage): void {
    this.env.network.send(this.node, to, message);
  }
}

/** The broken decision: any part past the applied LSN is applied, whatever its prevLsn. */
function planAnyNewer(
  appliedLsn: bigint,
  parts: readonly Part[],
): { apply: Part[]; appliedLsnAfter: bigint; duplicates: number; gap?: { lsn: bigint; prevLsn: bigint } } {
  const apply: Part[] = [];
  let appliedLsnAfter = appliedLsn;
  let duplicates = 0;
  for (const part of parts) {
    if (part.lsn <= appliedLsnAfter) {
      duplicates += 1;
      continue;
    }
    apply.push(part);
    appliedLsnAfter = part.lsn;
  }
  return { apply, appliedLsnAfter, duplicates };
}
