#!/usr/bin/env node
// One SQLite consumer of a peer pipeline (Redis Streams or NATS JetStream), run as a child process by
// `pnpm bench:peers`: it reads its shard's stream from the offset it stored, and applies each batch and the
// new offset in one SQLite transaction (WAL, synchronous=NORMAL, as our shards), like a shard does.
import Database from "better-sqlite3";
import * as hdr from "hdr-histogram-js";
import { Redis } from "ioredis";
import { connect, consumerOpts, type JsMsg } from "nats";
import { monotonicNs } from "@logplayer/common";
import { createDelayHistogram, recordDelayUs } from "../delay-histograms";
import { decodePeerMessage, type FromConsumer, type PeerMessage, type ToConsumer } from "./wire";

export interface ConsumerConfig {
  system: "redis" | "nats";
  shard: number;
  dbPath: string;
  port: number;
}

const READ_BATCH_MAX = 500;

function send(message: FromConsumer): void {
  process.send?.(message);
}

class SqliteSink {
  readonly #db: Database.Database;
  readonly #apply: (messages: readonly PeerMessage[], offset: string) => void;
  histogram = createDelayHistogram();
  applied = 0;

  constructor(dbPath: string) {
    this.#db = new Database(dbPath);
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("synchronous = NORMAL");
    this.#db.exec("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID");
    this.#db.exec("CREATE TABLE IF NOT EXISTS stream_offset (id INTEGER PRIMARY KEY CHECK (id = 1), position TEXT NOT NULL)");
    const put = this.#db.prepare("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    const setOffset = this.#db.prepare(
      "INSERT INTO stream_offset (id, position) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET position = excluded.position",
    );
    this.#apply = this.#db.transaction((messages: readonly PeerMessage[], offset: string) => {
      for (const message of messages) {
        for (let i = 0; i < message.keys.length; i++) put.run(message.keys[i]!, message.values[i]!);
      }
      setOffset.run(offset);
    });
  }

  get offset(): string | undefined {
    const row = this.#db.prepare("SELECT position FROM stream_offset WHERE id = 1").get() as { position: string } | undefined;
    return row?.position;
  }

  /** One SQLite transaction: the data and the stream offset together. */
  apply(messages: readonly PeerMessage[], offset: string): void {
    this.#apply(messages, offset);
    const committedNs = monotonicNs();
    for (const message of messages) recordDelayUs(this.histogram, Number(committedNs - message.sendNs) / 1000);
    this.applied += messages.length;
  }
}

async function runRedis(config: ConsumerConfig, sink: SqliteSink, stopped: () => boolean): Promise<void> {
  const redis = new Redis({ host: "127.0.0.1", port: config.port, lazyConnect: true, maxRetriesPerRequest: null });
  await redis.connect();
  let lastId = sink.offset ?? "0-0";
  send({ type: "ready" });
  while (!stopped()) {
    const reply = (await redis.xreadBuffer("COUNT", READ_BATCH_MAX, "BLOCK", 200, "STREAMS", `shard:${config.shard}`, lastId)) as
      | [Buffer, [Buffer, Buffer[]][]][]
      | null;
    if (reply === null) continue;
    const entries = reply[0]![1];
    if (entries.length === 0) continue;
    lastId = entries[entries.length - 1]![0].toString();
    // Each entry's fields are ["d", payload].
    sink.apply(
      entries.map(([, fields]) => decodePeerMessage(fields[1]!)),
      lastId,
    );
  }
  redis.disconnect();
}

async function runNats(config: ConsumerConfig, sink: SqliteSink, stopped: () => boolean): Promise<void> {
  const nc = await connect({ servers: `127.0.0.1:${config.port}` });
  const js = nc.jetstream();
  const stored = sink.offset;
  // An ordered push consumer from the stored offset (nats-server 2.9 lacks what the newer ordered pull consumer needs).
  const options = consumerOpts();
  options.orderedConsumer();
  if (stored === undefined) options.deliverAll();
  else options.startSequence(Number(stored) + 1);
  const messages = await js.subscribe(`shard.${config.shard}`, options);
  send({ type: "ready" });
  let pending: JsMsg[] = [];
  let flushScheduled = false;
  const flush = (): void => {
    flushScheduled = false;
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    sink.apply(
      batch.map((m) => decodePeerMessage(m.data)),
      String(batch[batch.length - 1]!.seq),
    );
  };
  const stopTimer = setInterval(() => {
    if (stopped()) messages.unsubscribe();
  }, 100);
  for await (const message of messages) {
    pending.push(message);
    // Everything already read off the socket goes into one SQLite transaction.
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  }
  clearInterval(stopTimer);
  flush();
  await nc.close();
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? "") as ConsumerConfig;
  const sink = new SqliteSink(config.dbPath);
  let stop = false;
  process.on("message", (message: ToConsumer) => {
    if (message.type === "reset") {
      sink.histogram = createDelayHistogram();
      sink.applied = 0;
    } else if (message.type === "stop") {
      stop = true;
    } else {
      const deadline = Date.now() + message.timeoutMs;
      const check = (): void => {
        if (sink.applied < message.expected && Date.now() < deadline) {
          setTimeout(check, 20);
          return;
        }
        send({ type: "result", applied: sink.applied, sqliteCommitDelayUs: hdr.encodeIntoCompressedBase64(sink.histogram) });
      };
      check();
    }
  });
  const run = config.system === "redis" ? runRedis : runNats;
  await run(config, sink, () => stop);
  process.disconnect?.();
}

main().catch((err: unknown) => {
  send({ type: "failed", error: err instanceof Error ? err.message : String(err) });
  process.exitCode = 1;
  process.disconnect?.();
});
