import type { ChannelCredentials, ChannelOptions } from "@grpc/grpc-js";
import { assert } from "@logplayer/common";
import { LogStoreClient, ShardClient } from "@logplayer/proto";

/**
 * The client's gRPC channels: one per configured LogStore address (made on
 * first use, since most replicas of a healthy cluster are never called) and
 * one per shard. grpc-js reconnects each channel by itself after a restart.
 */
export class Channels {
  readonly #logStores = new Map<string, LogStoreClient>();
  readonly #shards: ShardClient[];
  #closed = false;

  constructor(
    readonly logStoreAddresses: readonly string[],
    readonly shardAddresses: readonly string[],
    private readonly channelOptions: ChannelOptions,
    private readonly channelCredentials: ChannelCredentials,
  ) {
    assert(logStoreAddresses.length > 0, "channels: no LogStore address");
    this.#shards = shardAddresses.map((address) => new ShardClient(address, channelCredentials, channelOptions));
  }

  get closed(): boolean {
    return this.#closed;
  }

  logStore(address: string): LogStoreClient {
    assert(!this.#closed, "channels: used after close");
    // Any address, not only the configured ones: replicas named by Status (members, a not-leader refusal) are called too.
    let client = this.#logStores.get(address);
    if (client === undefined) {
      client = new LogStoreClient(address, this.channelCredentials, this.channelOptions);
      this.#logStores.set(address, client);
    }
    return client;
  }

  shard(shardId: number): ShardClient {
    assert(!this.#closed, "channels: used after close");
    const client = this.#shards[shardId];
    assert(client !== undefined, `channels: no shard ${shardId}`);
    return client;
  }

  shardAddress(shardId: number): string {
    const address = this.shardAddresses[shardId];
    assert(address !== undefined, `channels: no shard ${shardId}`);
    return address;
  }

  /** Idempotent. Calls still in flight fail with CANCELLED or UNAVAILABLE. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const client of this.#logStores.values()) client.close();
    for (const client of this.#shards) client.close();
  }
}
