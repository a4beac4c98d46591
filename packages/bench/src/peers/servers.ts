import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { Redis } from "ioredis";
import { connect, type JetStreamClient, type NatsConnection, RetentionPolicy, StorageType } from "nats";
import { LOOPBACK_HOST } from "@logplayer/common";

/** A peer's server process and a producer connection to it. */
export interface PeerServer {
  readonly name: "redis" | "nats";
  readonly port: number;
  readonly pid: number | undefined;
  /** Appends one transaction's per-shard messages; resolves when the server acknowledged it. */
  publish(perShard: ReadonlyMap<number, Buffer>): Promise<void>;
  stop(): Promise<void>;
}

/** The Debian packages the peers need, and the command that installs a missing one (never run by the benchmark). */
export const PEER_SERVERS = {
  redis: { binary: "redis-server", apt: "apt-get install -y redis-server" },
  nats: { binary: "nats-server", apt: "apt-get install -y nats-server" },
} as const;

/** The peers whose server binary is not on PATH, with the apt command for each. */
export function missingPeerServers(): string[] {
  return Object.values(PEER_SERVERS)
    .filter(({ binary }) => {
      try {
        execFileSync("sh", ["-c", `command -v ${binary}`], { stdio: "ignore" });
        return false;
      } catch {
        return true;
      }
    })
    .map(({ binary, apt }) => `${binary} is not installed: ${apt}`);
}

const START_TIMEOUT_MS = 20_000;

async function waitForPort(port: number, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode} at start`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, LOOPBACK_HOST, () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what} did not listen on ${port} within ${START_TIMEOUT_MS} ms`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** redis-server with an append-only file fsynced before each write is answered (appendfsync always). */
export async function startRedis(dir: string, port: number): Promise<PeerServer> {
  fs.mkdirSync(dir, { recursive: true });
  const args = ["--port", String(port), "--bind", LOOPBACK_HOST, "--dir", dir, "--appendonly", "yes", "--appendfsync", "always"];
  const child = spawn("redis-server", [...args, "--save", "", "--daemonize", "no", "--logfile", path.join(dir, "redis.log")], {
    stdio: "ignore",
  });
  await waitForPort(port, child, "redis-server");
  const redis = new Redis({ host: LOOPBACK_HOST, port, lazyConnect: true, enableAutoPipelining: true });
  await redis.connect();
  return {
    name: "redis",
    port,
    pid: child.pid,
    async publish(perShard) {
      const only = perShard.size === 1 ? [...perShard][0] : undefined;
      if (only !== undefined) {
        await redis.xadd(`shard:${only[0]}`, "*", "d", only[1]);
        return;
      }
      // Several shards: one MULTI, so the transaction is in every stream or in none.
      const multi = redis.multi();
      for (const [shard, payload] of perShard) multi.xadd(`shard:${shard}`, "*", "d", payload);
      const results = await multi.exec();
      const failed = results?.find(([err]) => err !== null);
      if (results === null || failed !== undefined) throw failed?.[0] ?? new Error("MULTI aborted");
    },
    async stop() {
      redis.disconnect();
      await stopChild(child);
    },
  };
}

/** nats-server with JetStream (file storage; it acknowledges before an fsync, its default). */
export async function startNats(dir: string, port: number, shards: number): Promise<PeerServer> {
  fs.mkdirSync(dir, { recursive: true });
  const child = spawn("nats-server", ["-js", "-sd", dir, "-a", LOOPBACK_HOST, "-p", String(port), "-l", path.join(dir, "nats.log")], {
    stdio: "ignore",
  });
  await waitForPort(port, child, "nats-server");
  const nc: NatsConnection = await connect({ servers: `${LOOPBACK_HOST}:${port}` });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.add({
    name: "LP",
    subjects: Array.from({ length: shards }, (_, i) => `shard.${i}`),
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
  });
  const js: JetStreamClient = nc.jetstream();
  return {
    name: "nats",
    port,
    pid: child.pid,
    async publish(perShard) {
      // JetStream (2.9) has no multi-subject atomic publish: one acknowledged publish per shard.
      await Promise.all([...perShard].map(([shard, payload]) => js.publish(`shard.${shard}`, payload)));
    },
    async stop() {
      await nc.close();
      await stopChild(child);
    },
  };
}
