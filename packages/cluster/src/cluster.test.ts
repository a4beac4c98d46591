// A real cluster (built services, ports "auto", temp dir): start order, wiring,
// read-your-writes through every shard, kill/restart, unexpected exits, clean stop.
// Needs `pnpm build` (services/*/dist/main.js); `pnpm test` builds first.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { mutation, type LogPlayerClient } from "@logplayer/client";
import { LocalCluster } from "./cluster";

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
