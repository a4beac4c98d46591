import { Metadata } from "@grpc/grpc-js";
import { LpError, Status, type Logger } from "@logplayer/common";
import { TrimPointGatherer } from "@logplayer/delivery";
import type { LogStoreClient, ShardClient, ShardStatusResponse } from "@logplayer/proto";

export interface TrimReporterOptions {
  readonly clusterId: string;
  readonly playerId: string;
  readonly shards: readonly ShardClient[];
  readonly replicas: readonly { readonly address: string; readonly client: LogStoreClient }[];
  readonly intervalMs: number;
  readonly callTimeoutMs: number;
}

/**
 * Every intervalMs: asks each shard its restorable LSN (Status), and once
 * every shard has answered reports the minimum to every LogStore replica.
 * Each replica checks and keeps the point on its own (docs/storage-lifecycle.md).
 */
export class TrimReporter {
  readonly #options: TrimReporterOptions;
  readonly #logger: Logger;
  readonly #gatherer: TrimPointGatherer;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #lastReported: bigint | undefined;

  constructor(options: TrimReporterOptions, logger: Logger) {
    this.#options = options;
    this.#logger = logger;
    this.#gatherer = new TrimPointGatherer(options.shards.length);
  }

  start(): void {
    this.#timer = setInterval(() => void this.#round(), this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One round; skipped while the previous one is still waiting for answers. */
  async #round(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      await Promise.all(this.#options.shards.map((shard, shardId) => this.#askShard(shard, shardId)));
      const trimPoint = this.#gatherer.trimPoint;
      if (trimPoint === undefined || trimPoint === 0n || this.#timer === null) return;
      await Promise.all(this.#options.replicas.map((replica) => this.#report(replica, trimPoint)));
      if (trimPoint !== this.#lastReported) this.#logger.debug({ trimPoint: trimPoint.toString() }, "trim point reported");
      this.#lastReported = trimPoint;
    } finally {
      this.#running = false;
    }
  }

  async #askShard(shard: ShardClient, shardId: number): Promise<void> {
    let status: ShardStatusResponse;
    try {
      status = await new Promise<ShardStatusResponse>((resolve, reject) => {
        const deadline = new Date(Date.now() + this.#options.callTimeoutMs);
        shard.status({}, new Metadata(), { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
      });
    } catch (err: unknown) {
      this.#logger.debug({ shard: shardId, err: LpError.from(err).message }, "trim point: shard status unavailable");
      return;
    }
    // A shard of another cluster or at another position tells nothing about this one.
    if (status.clusterId !== this.#options.clusterId || status.shardId !== shardId) {
      this.#logger.warn(
        { shard: shardId, answeredClusterId: status.clusterId, answeredShardId: status.shardId },
        "trim point: a shard address answered as another shard; its restorable LSN is ignored",
      );
      return;
    }
    this.#gatherer.update(shardId, status.restorableLsn);
  }

  async #report(replica: TrimReporterOptions["replicas"][number], trimPoint: bigint): Promise<void> {
    const shardCount = this.#options.shards.length;
    const request = { trimPoint, shardCount, reporterId: this.#options.playerId };
    try {
      await new Promise<void>((resolve, reject) => {
        const deadline = new Date(Date.now() + this.#options.callTimeoutMs);
        replica.client.reportTrimPoint(request, new Metadata(), { deadline }, (err) => (err ? reject(err) : resolve()));
      });
    } catch (err: unknown) {
      const error = LpError.from(err);
      // A follower behind the point refuses it until it catches up; anything else is worth a look.
      const level = error.code === Status.INVALID_ARGUMENT || error.code === Status.UNAVAILABLE ? "debug" : "warn";
      this.#logger[level]({ logstore: replica.address, code: Status[error.code], err: error.message }, "trim point report refused");
    }
  }
}
