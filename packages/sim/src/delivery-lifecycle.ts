import {
  judgeTrimReport,
  NO_RAFT_FLOOR,
  restorableLsn,
  trimBound,
  TrimPointGatherer,
  trimThroughLsn,
  type RetentionPolicy,
  type SegmentSummary,
  type TrimReport,
} from "@logplayer/delivery";
import type { LogEntry } from "@logplayer/proto";
import type { DeliveryChecker } from "./delivery-checker";
import type { SimLogStore } from "./delivery-logstore";
import { LOGSTORE_NODE } from "./delivery-messages";
import type { SimPlayer } from "./delivery-player";
import type { SimShard } from "./delivery-shard";
import type { SimNodeId } from "./network";
import { Prng } from "./prng";
import type { Simulator } from "./simulator";

/**
 * The storage lifecycle in the delivery scenario (docs/storage-lifecycle.md),
 * on the PRODUCTION trim rule of @logplayer/delivery: shards take backups and
 * report their restorable LSN, the LogPlayer's reporter gathers the minimum,
 * the LogStore judges the report and deletes whole segments below it, and a
 * shard that loses its database comes back from its newest backup.
 */

/**
 * TEST-ONLY broken trimming, to show the checker catches a trim past a
 * shard's restorable LSN: "trim-one-past" deletes one more whole segment
 * than the rule allows (never the active one).
 */
export type LifecycleFault = "trim-one-past";

/** Nominal bytes of one WAL record (retention by bytes counts these). */
const RECORD_BYTES = 100;
/** Backups a shard keeps (--backup-keep). */
const BACKUPS_KEPT = 3;

export interface LifecycleConfig {
  /** Entries per simulated WAL segment: only whole segments are deleted. */
  readonly segmentEntries: number;
  readonly retention: RetentionPolicy;
  /** --trim-report-interval-ms of the LogPlayer. */
  readonly reportIntervalMs: number;
  /** Latency of the ReportTrimPoint call after the shards answered. */
  readonly reportDelayMsMax: number;
  /** Mean gap between lifecycle events (a backup, or a shard losing its database). */
  readonly eventGapMsMax: number;
  /** Per shard: runs with --backup-dir (its restorable LSN is held at its newest backup). */
  readonly backupsOn: readonly boolean[];
  readonly fault?: LifecycleFault;
}

/**
 * Per-seed lifecycle settings, drawn from their own PRNG stream so that the
 * rest of a seed's run (network, nemesis, client) draws what it drew before.
 */
export function drawLifecycle(seed: number, shards: number, fault: LifecycleFault | undefined): { config: LifecycleConfig; prng: Prng } {
  const prng = new Prng(seed * 7919 + 17);
  const segmentEntries = prng.pick([2, 4, 16, 64]);
  const config: LifecycleConfig = {
    segmentEntries,
    retention: {
      retainBytes: prng.pick([0, 0, 3 * segmentEntries * RECORD_BYTES]),
      retainAgeMs: prng.pick([0, 0, 150]),
    },
    reportIntervalMs: prng.pick([20, 60, 200]),
    reportDelayMsMax: prng.pick([1, 20, 100]),
    eventGapMsMax: prng.pick([30, 150, 600]),
    backupsOn: Array.from({ length: shards }, () => prng.chance(0.6)),
    ...(fault === undefined ? {} : { fault }),
  };
  return { config, prng };
}

/** A shard backup: the database as of `appliedLsn` (data, the applied LSN and the checker's ghost), on another disk. */
export interface ShardBackup {
  readonly appliedLsn: bigint;
  readonly kv: ReadonlyMap<string, Uint8Array>;
  readonly appliedParts: readonly bigint[];
}

/** A shard's backups directory: survives the shard's crashes and the loss of its database. */
export class ShardBackups {
  readonly #backups: ShardBackup[] = [];

  constructor(readonly on: boolean) {}

  get newest(): ShardBackup | undefined {
    return this.#backups.at(-1);
  }

  /** A finished backup (its manifest written): only now does it count. */
  add(backup: ShardBackup): void {
    if (!this.on) return;
    this.#backups.push(backup);
    if (this.#backups.length > BACKUPS_KEPT) this.#backups.shift();
  }

  /** The shard's restorable LSN, by the production rule (0 with backups on and none taken yet). */
  restorableLsn(durableLsn: bigint): bigint {
    return restorableLsn(durableLsn, this.on ? (this.newest?.appliedLsn ?? 0n) : undefined);
  }
}

/**
 * The LogStore replica's trimming: the persisted trim point, and the first
 * LSN its WAL still holds. Both survive a crash (trim-point.json is written
 * before anything goes; each segment unlink is synced before the next). The
 * simulated WAL keeps the bytes of trimmed entries for its recovery check, but
 * nothing below `firstLsn` is ever served again.
 */
export class SimWalTrimming {
  trimPoint = 0n;
  firstLsn = 1n;
  readonly stats = { reports: 0, refused: 0, trims: 0, segmentsDeleted: 0 };

  constructor(
    private readonly config: LifecycleConfig,
    private readonly shardCount: number,
  ) {}

  /**
   * A ReportTrimPoint from the LogPlayer: judged, then a trim pass over the
   * WAL's segments. `lastLsn` is the WAL's last written LSN (commits and
   * appends awaiting their fsync); `committed` the committed entries.
   */
  report(report: TrimReport, committed: readonly LogEntry[], lastLsn: bigint, nowMs: number): void {
    this.stats.reports += 1;
    const commitLsn = BigInt(committed.length);
    const verdict = judgeTrimReport(report, this.trimPoint, commitLsn, this.shardCount);
    if (verdict.kind === "refused") {
      this.stats.refused += 1;
      return;
    }
    if (verdict.kind === "raise") this.trimPoint = verdict.trimPoint;
    const segments = this.#segments(committed, lastLsn, nowMs);
    let through = trimThroughLsn(segments, trimBound(this.trimPoint, NO_RAFT_FLOOR), commitLsn, this.config.retention, nowMs);
    if (this.config.fault === "trim-one-past") through = oneSegmentPast(segments, through);
    if (through < this.firstLsn) return;
    const deleted = segments.filter((segment) => segment.lastLsn <= through).length;
    this.firstLsn = through + 1n;
    this.stats.trims += 1;
    this.stats.segmentsDeleted += deleted;
  }

  /** The WAL's segments from the first LSN, oldest first; the last is the one being written. */
  #segments(committed: readonly LogEntry[], lastLsn: bigint, nowMs: number): SegmentSummary[] {
    const size = BigInt(this.config.segmentEntries);
    const list: SegmentSummary[] = [];
    for (let first = this.firstLsn; first <= lastLsn; first += size) {
      const last = first + size - 1n < lastLsn ? first + size - 1n : lastLsn;
      const newest = committed[Number(last) - 1];
      list.push({
        firstLsn: first,
        lastLsn: last,
        bytes: Number(last - first + 1n) * RECORD_BYTES,
        lastWriteMs: newest === undefined ? nowMs : Number(newest.commitTimeNs / 1_000_000n),
      });
    }
    return list;
  }
}

/** The mutation: also the next whole segment after what the rule allows, if it is not the active one. */
function oneSegmentPast(segments: readonly SegmentSummary[], through: bigint): bigint {
  const next = segments.findIndex((segment) => segment.lastLsn > through);
  if (next < 0 || next >= segments.length - 1) return through;
  return segments[next]?.lastLsn ?? through;
}

/** The LogPlayer's TrimReporter, over the simulated cluster (the gathering is the production TrimPointGatherer). */
export class SimTrimReporter {
  #gatherer: TrimPointGatherer;

  constructor(private readonly shardCount: number) {
    this.#gatherer = new TrimPointGatherer(shardCount);
  }

  /** The LogPlayer restarted: it knows nothing of the shards again. */
  reset(): void {
    this.#gatherer = new TrimPointGatherer(this.shardCount);
  }

  /** A shard answered Status. */
  heard(shard: number, restorable: bigint): void {
    this.#gatherer.update(shard, restorable);
  }

  /** What to report, once every shard has answered at least once. */
  get report(): TrimReport | undefined {
    const trimPoint = this.#gatherer.trimPoint;
    if (trimPoint === undefined || trimPoint === 0n) return undefined;
    return { trimPoint, shardCount: this.shardCount };
  }
}

/** What the lifecycle drives in the scenario. */
export interface LifecycleParts {
  readonly sim: Simulator;
  readonly checker: DeliveryChecker;
  readonly logStore: SimLogStore;
  readonly shards: readonly SimShard[];
  /** The LogPlayer whose TrimReporter runs (the first one). */
  readonly reporter: SimPlayer;
  connected(a: SimNodeId, b: SimNodeId): boolean;
  faultsOn(): boolean;
}

/**
 * Runs the lifecycle: the TrimReporter's rounds (every reportIntervalMs, while
 * its LogPlayer runs), backups, and shards losing their database and coming
 * back from their newest backup; and checks after every step that no shard
 * can ever need an entry the log no longer holds.
 */
export class DeliveryLifecycle {
  readonly #reporter: SimTrimReporter;
  #reporterIncarnation = -1;

  constructor(
    private readonly parts: LifecycleParts,
    private readonly config: LifecycleConfig,
    private readonly prng: Prng,
  ) {
    this.#reporter = new SimTrimReporter(parts.shards.length);
  }

  start(): void {
    this.#scheduleRound();
    this.#scheduleEvent();
  }

  /**
   * The log must reach every shard from wherever it may come back: after a
   * power cut its durable applied LSN, after losing its database its newest
   * backup (or nothing). Ground truth from the disks, not the reported values.
   */
  check(): void {
    const firstLsn = this.parts.logStore.firstLsn;
    for (const shard of this.parts.shards) {
      const durable = shard.durableLsn;
      const backup = shard.backups.on ? (shard.backups.newest?.appliedLsn ?? 0n) : undefined;
      const worst = backup !== undefined && backup < durable ? backup : durable;
      if (worst + 1n < firstLsn) {
        this.parts.checker.fail(
          `trim: shard ${shard.index} may come back at LSN ${worst} (durable ${durable}` +
            `${backup === undefined ? "" : `, newest backup ${backup}`}) but the log starts at ${firstLsn}: ` +
            `LSN ${worst + 1n} is gone (trim point ${this.parts.logStore.trimming?.trimPoint ?? 0n})`,
        );
      }
    }
  }

  get stats(): Record<string, number> {
    const trimming = this.parts.logStore.trimming?.stats;
    let backups = 0;
    let restores = 0;
    for (const shard of this.parts.shards) {
      backups += shard.stats.backups;
      restores += shard.stats.restores;
    }
    return {
      backups,
      databaseRestores: restores,
      trimReports: trimming?.reports ?? 0,
      trims: trimming?.trims ?? 0,
      segmentsTrimmed: trimming?.segmentsDeleted ?? 0,
    };
  }

  /** One TrimReporter round: Status of every reachable shard, then ReportTrimPoint after the call's latency. */
  #scheduleRound(): void {
    this.parts.sim.schedule(this.config.reportIntervalMs, () => {
      this.#round();
      this.#scheduleRound();
    });
  }

  #round(): void {
    const { reporter, sim, shards, logStore } = this.parts;
    if (!reporter.up || reporter.pausedUntilMs > sim.nowMs) return;
    if (reporter.incarnation !== this.#reporterIncarnation) {
      this.#reporter.reset();
      this.#reporterIncarnation = reporter.incarnation;
    }
    for (const shard of shards) {
      if (shard.up && this.parts.connected(reporter.node, shard.node)) this.#reporter.heard(shard.index, shard.restorableLsn);
    }
    const report = this.#reporter.report;
    if (report === undefined) return;
    sim.schedule(this.prng.between(1, this.config.reportDelayMsMax), () => {
      if (this.parts.connected(reporter.node, LOGSTORE_NODE)) logStore.reportTrimPoint(report);
    });
  }

  #scheduleEvent(): void {
    this.parts.sim.schedule(this.prng.between(5, this.config.eventGapMsMax), () => {
      if (!this.parts.faultsOn()) return;
      this.#event();
      this.#scheduleEvent();
    });
  }

  #event(): void {
    const prng = this.prng;
    const shard = prng.pick(this.parts.shards);
    if (!shard.backups.on) return;
    if (prng.chance(0.85)) {
      shard.takeBackup();
      return;
    }
    // The database is lost (a disk replaced, a file deleted): stop, restore the newest backup, start.
    if (shard.up) shard.crash();
    shard.loseDatabase();
    this.parts.sim.schedule(prng.between(5, 600), () => {
      if (this.parts.faultsOn() && !shard.up) shard.boot();
    });
  }
}
