// A real cluster (built services, ports "auto", temp dir): start order, wiring,
// read-your-writes through every shard, kill/restart, unexpected exits, clean stop.
// Needs `pnpm build` (services/*/dist/main.js); `pnpm test` builds first.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { mutation, type LogPlayerClient } from "@logplayer/client";
import { DataDirInUseError } from "@logplayer/data-dir-lock";
import { waitFor } from "@logplayer/testing";
import { LocalCluster } from "./cluster";
import { autoPortTable } from "./plan";

const START_TIMEOUT_MS = 60_000;

/** A key routed to `shardId`, found by trying names (the map is a hash). */
function keyOnShard(client: LogPlayerClient, shardId: number, prefix: string): string {
  for (let i = 0; i < 10_000; i++) {
    const key = `${prefix}-${i}`;
    if (client.shardForKey(key) === shardId) return key;
  }
  throw new Error(`no key for shard ${shardId}`);
}

describe("LocalCluster (real processes)", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "lp-cluster-test-"));
  let cluster: LocalCluster;
  let client: LogPlayerClient;

  beforeAll(async () => {
    cluster = await LocalCluster.start({ dataDir, shardCount: 2, logPlayers: 1, ports: "auto", logLevel: "info" });
    client = await cluster.connectClient({ timeoutMs: 10_000 });
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    client?.close();
    await cluster?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("starts every planned process on its planned port, with one log file each", () => {
    expect(cluster.processes.map((p) => p.name)).toEqual(["logstore", "shard-0", "shard-1", "logplayer-0"]);
    for (const p of cluster.processes) {
      expect(p.running).toBe(true);
      expect(p.ready?.grpcPort).toBe(p.spec.grpcPort);
      expect(fs.readFileSync(p.logFile, "utf8")).toContain('"msg":"ready"');
    }
    expect(cluster.endpoints.shards).toEqual(cluster.plan.filter((s) => s.service === "shard").map((s) => s.grpcAddress));
    expect(client.shardMap.shardCount).toBe(2);
  });

  it("delivers a commit to every shard it touches (read-your-writes through the launcher's wiring)", async () => {
    const keys = [keyOnShard(client, 0, "wired"), keyOnShard(client, 1, "wired")];
    const { lsn } = await client.commit(keys.map((k) => mutation.put(k, `v-${k}`)));
    for (const key of keys) {
      const read = await client.get(key, { minLsn: lsn });
      expect(read.value.toString()).toBe(`v-${key}`);
    }
  });

  it("refuses a second launcher on the same data directory, naming the holder", async () => {
    const second = LocalCluster.prepare({ dataDir, shardCount: 2, logPlayers: 1, ports: "auto" });
    await expect(second).rejects.toThrow(DataDirInUseError);
    await expect(second).rejects.toThrow(`in use by local cluster launcher (pid ${process.pid}`);
    expect(cluster.processes.every((p) => p.running)).toBe(true);
  });

  it("kill + restart brings a shard back on the same address and data", async () => {
    const key = keyOnShard(client, 1, "restart");
    const before = await client.commit([mutation.put(key, "before")]);
    await client.get(key, { minLsn: before.lsn });
    const oldPid = cluster.process("shard-1").pid;
    cluster.kill("shard-1", "SIGKILL");
    await cluster.restart("shard-1");
    expect(cluster.process("shard-1").pid).not.toBe(oldPid);
    const after = await client.commit([mutation.append(key, "+after")]);
    expect((await client.get(key, { minLsn: after.lsn })).value.toString()).toBe("before+after");
  });

  it("reports a process that dies on its own, and not one it was asked to kill", async () => {
    const seen: string[] = [];
    const unsubscribe = cluster.onUnexpectedExit((name, exit) => seen.push(`${name}:${exit.signal}`));
    cluster.kill("logplayer-0", "SIGKILL"); // asked: not reported
    await cluster.restart("logplayer-0");
    process.kill(cluster.process("shard-0").pid!, "SIGKILL"); // not asked: reported
    await cluster.process("shard-0").exited;
    unsubscribe();
    expect(seen).toEqual(["shard-0:SIGKILL"]);
    await cluster.restart("shard-0");
    const key = keyOnShard(client, 0, "after-death");
    const { lsn } = await client.commit([mutation.put(key, "ok")]);
    expect((await client.get(key, { minLsn: lsn })).value.toString()).toBe("ok");
  });

  it("stops everything gracefully (exit 0), LogPlayer first and LogStore last", async () => {
    const exitOrder: string[] = [];
    for (const p of cluster.processes) p.onExit(() => exitOrder.push(p.name));
    client.close();
    await cluster.stop();
    for (const p of cluster.processes) {
      expect(p.running).toBe(false);
      expect(p.lastExit).toEqual({ code: 0, signal: null, expected: true });
    }
    expect(exitOrder[0]).toBe("logplayer-0");
    expect(exitOrder[exitOrder.length - 1]).toBe("logstore");
  });
});

describe("LocalCluster refuses what would mix two clusters", () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lp-cluster-refuse-"));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("refuses to start when a planned port is already taken, and starts nothing", async () => {
    const ports = await autoPortTable(1, 1, undefined, 1);
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(ports.logstore.grpc, "127.0.0.1", resolve));
    const cluster = await LocalCluster.prepare({ dataDir: tempDir(), shardCount: 1, logPlayers: 1, logStoreReplicas: 1, ports });
    try {
      await expect(cluster.startAll()).rejects.toThrow(`port ${ports.logstore.grpc} (logstore gRPC) already in use`);
      expect(cluster.processes.every((p) => p.pid === undefined)).toBe(true);
    } finally {
      await cluster.stop();
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it("a second `pnpm start` on a running cluster's data directory exits 1 naming the first one's pid", async () => {
    const dataDir = tempDir();
    const main = path.join(__dirname, "..", "dist", "main.js");
    const args = [main, "--data-dir", dataDir, "--ports", "auto", "--logstore-replicas", "1", "--shards", "1"];
    const first = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let firstOut = "";
    first.stdout.on("data", (chunk: Buffer) => (firstOut += chunk.toString()));
    const firstExited = new Promise((resolve) => first.once("exit", resolve));
    try {
      await waitFor("the first cluster runs", () => firstOut.includes("LogPlayer cluster running"), { timeoutMs: 60_000 });
      const second = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
      let secondErr = "";
      second.stderr.on("data", (chunk: Buffer) => (secondErr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => second.once("exit", resolve));
      expect(code).toBe(1);
      expect(secondErr).toContain(`data directory ${dataDir} is in use by local cluster launcher (pid ${first.pid}`);
      expect(first.exitCode).toBeNull();
    } finally {
      first.kill("SIGINT");
      await firstExited;
    }
  }, 90_000);
});
