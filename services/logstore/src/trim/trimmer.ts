import type { Logger } from "@logplayer/common";
import {
  judgeTrimReport,
  trimBound,
  trimThroughLsn,
  type RetentionPolicy,
  type SegmentSummary,
  type TrimReport,
} from "@logplayer/delivery";

/** The WAL's side of trimming: what segments it has, and deleting the oldest. */
export interface LogCompactor {
  /** The WAL's segments, oldest first; the last one is being written. */
  segments(): Promise<SegmentSummary[]>;
  /** Deletes every whole segment whose entries are all at or below `lsn`; resolves once the deletion is durable. */
  compactTo(lsn: bigint): Promise<void>;
  /** The lowest LSN the WAL still stores. */
  readonly firstLsn: bigint;
  /** The newest snapshot's LSN, when the compactor takes snapshots (0: none). */
  readonly snapshotLsn?: bigint;
}

/** Where the trim point survives restarts. */
export interface TrimPointStore {
  /** 0 when none was ever saved. */
  load(): Promise<bigint>;
  /** Durable when it resolves. */
  save(trimPoint: bigint): Promise<void>;
}

export interface TrimmerOptions {
  readonly compactor: LogCompactor;
  readonly store: TrimPointStore;
  readonly retention: RetentionPolicy;
  readonly shardCount: number;
  /** This replica's commit LSN now. */
  readonly commitLsn: () => bigint;
  /**
   * What Raft still needs here: entries above it may be sent to a peer. Until
   * the LogStore has InstallSnapshot, a peer behind the leader's first index
   * could never catch up, so this bounds the trim too (see raftTrimFloor).
   */
  readonly raftFloor: () => bigint;
  readonly nowMs: () => number;
  readonly logger: Logger;
}

export type TrimReportOutcome =
  | { readonly kind: "accepted"; readonly trimPoint: bigint; readonly firstLsn: bigint }
  | { readonly kind: "refused"; readonly reason: string };

/**
 * One replica's trimming: keeps the highest checked trim point (persisted
 * before it is acted on) and deletes WAL segments at or below
 * min(trim point, commit LSN, retention floor). Reports and passes run one at
 * a time, in order.
 */
export class Trimmer {
  readonly #options: TrimmerOptions;
  #trimPoint: bigint;
  #walBytes = 0;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(options: TrimmerOptions, trimPoint: bigint) {
    this.#options = options;
    this.#trimPoint = trimPoint;
  }

  static async open(options: TrimmerOptions): Promise<Trimmer> {
    return new Trimmer(options, await options.store.load());
  }

  get trimPoint(): bigint {
    return this.#trimPoint;
  }

  /** The newest snapshot's LSN as of the last compaction (0: none yet). */
  get snapshotLsn(): bigint {
    return this.#options.compactor.snapshotLsn ?? 0n;
  }

  /** WAL bytes on disk as of the last pass. */
  get walBytes(): number {
    return this.#walBytes;
  }

  /** Checks a LogPlayer's report; a raised point is persisted, then a trim pass runs. */
  report(report: TrimReport): Promise<TrimReportOutcome> {
    return this.#serialized(async (): Promise<TrimReportOutcome> => {
      const verdict = judgeTrimReport(report, this.#trimPoint, this.#options.commitLsn(), this.#options.shardCount);
      if (verdict.kind === "refused") return verdict;
      if (verdict.kind === "raise") {
        await this.#options.store.save(verdict.trimPoint);
        this.#trimPoint = verdict.trimPoint;
        this.#options.logger.debug({ trimPoint: verdict.trimPoint.toString() }, "trim point raised");
      }
      await this.#pass();
      return { kind: "accepted", trimPoint: this.#trimPoint, firstLsn: this.#options.compactor.firstLsn };
    });
  }

  /** One trim pass now (the retention age lets segments go with time, without a new report). */
  trimNow(): Promise<void> {
    return this.#serialized(() => this.#pass());
  }

  async #pass(): Promise<void> {
    const { compactor, retention, commitLsn, raftFloor, nowMs, logger } = this.#options;
    const segments = await compactor.segments();
    this.#walBytes = segments.reduce((sum, segment) => sum + segment.bytes, 0);
    const through = trimThroughLsn(segments, trimBound(this.#trimPoint, raftFloor()), commitLsn(), retention, nowMs());
    if (through < compactor.firstLsn) return;
    const firstBefore = compactor.firstLsn;
    await compactor.compactTo(through);
    const after = await compactor.segments();
    this.#walBytes = after.reduce((sum, segment) => sum + segment.bytes, 0);
    logger.info(
      { trimPoint: this.#trimPoint.toString(), firstLsnBefore: firstBefore.toString(), firstLsn: compactor.firstLsn.toString() },
      "WAL trimmed",
    );
  }

  /** Resolves once the report or pass under way (if any) is done. */
  async drain(): Promise<void> {
    await this.#queue;
  }

  #serialized<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(work);
    this.#queue = result.catch(() => undefined);
    return result;
  }
}
