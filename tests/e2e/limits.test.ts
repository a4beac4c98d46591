import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { LogPlayerClient, mutation, runLpctl } from "@logplayer/client";
import { createShardMap, DEFAULT_TRANSACTION_LIMITS, freePorts, shardForKey, type TransactionLimits } from "@logplayer/common";
import { transactionEncodedBytes, type Mutation } from "@logplayer/proto";
import { fillUntilFree, mountTmpfs, unmount, waitFor } from "@logplayer/testing";

/**
 * Issue 12, scenarios 5 and 6, against real processes: one LogStore, three
 * shards, one LogPlayer. The cluster's limits are recorded when it is
 * created and every service enforces the same values: a service started
 * with another value refuses to start, the largest legal entry reaches
 * every shard, and an APPEND that would grow a value past value_bytes_max
 * has one documented outcome (its part rejected whole, readable per LSN)
 * while later transactions still apply.
 */

const ROOT = path.resolve(__dirname, "../..");
const SHARDS = 3;
const SHARD_MAP = createShardMap(SHARDS);
const READY_TIMEOUT_MS = 30_000;

interface Running {
  child: ChildProcess;
  grpcPort: number;
  address: string;
}

const children = new Set<ChildProcess>();
let tmp = "";

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lp-limits-"));
});

afterAll(async () => {
  await Promise.all([...children].map(killHard));
  fs.rmSync(tmp, { recursive: true, force: true });
});

// Plain text (LP_INSECURE=1 for every process this file starts, and for the in-process client and lpctl): this
// file is about the cluster's limits; mTLS and roles are tested in tests/e2e/security.process.test.ts.
process.env["LP_INSECURE"] = "1";

function spawnService(service: string, args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [path.join(ROOT, "services", service, "dist", "main.js"), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LP_INSECURE: "1" },
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  let output = "";
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

function start(service: string, args: string[]): Promise<Running> {
  const { child, output } = spawnService(service, args);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${service} not ready in time: ${output()}`)), READY_TIMEOUT_MS);
    child.on("exit", (code) => reject(new Error(`${service} exited ${code} before ready: ${output()}`)));
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        const record = JSON.parse(line) as { msg?: string; grpcPort?: number };
        if (record.msg === "ready" && typeof record.grpcPort === "number") {
          clearTimeout(timer);
          resolve({ child, grpcPort: record.grpcPort, address: `127.0.0.1:${record.grpcPort}` });
        }
      } catch {
        // not a JSON line
      }
    });
  });
}

/** Starts a service that must refuse to start: resolves with its exit code and output. */
function startRefused(service: string, args: string[]): Promise<{ code: number | null; output: string }> {
  const { child, output } = spawnService(service, args);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${service} did not exit: ${output()}`)), READY_TIMEOUT_MS);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output: output() });
    });
  });
}

function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

/** The command-line spelling of a set of limits. */
function limitFlags(limits: Partial<TransactionLimits>): string[] {
  const names: Record<keyof TransactionLimits, string> = {
    entryBytesMax: "--entry-bytes-max",
    mutationsMax: "--mutations-max",
    keyBytesMax: "--key-bytes-max",
    valueBytesMax: "--value-bytes-max",
  };
  return Object.entries(limits).flatMap(([name, value]) => [names[name as keyof TransactionLimits], String(value)]);
}

function logStoreArgs(cluster: string, port: number, limits: Partial<TransactionLimits>): string[] {
  const dataDir = path.join(tmp, cluster, "logstore");
  return [
    ...["--data-dir", dataDir, "--shard-count", String(SHARDS), "--cluster-id", cluster],
    ...["--listen", `127.0.0.1:${port}`, "--metrics-port", "-1"],
    ...limitFlags(limits),
  ];
}

function shardArgs(cluster: string, id: number, port: number, limits: Partial<TransactionLimits>): string[] {
  return [
    ...["--shard-id", String(id), "--shard-count", String(SHARDS), "--cluster-id", cluster],
    ...["--data-dir", path.join(tmp, cluster, `shard-${id}`), "--listen", `127.0.0.1:${port}`, "--metrics-port", "-1"],
    ...limitFlags(limits),
  ];
}

function playerArgs(logStore: Running, shards: readonly Running[], extra: string[] = []): string[] {
  return [
    ...["--logstore", logStore.address, "--shards", shards.map((s) => s.address).join(",")],
    ...["--listen", "127.0.0.1:0", "--metrics-port", "-1", "--backoff-max-ms", "300", "--start-wait-ms", "200"],
    ...extra,
  ];
}

/** A LogStore, three shards (all given `limits` on their first start) and a LogPlayer. */
async function startCluster(cluster: string, limits: Partial<TransactionLimits>) {
  const [logStorePort, ...shardPorts] = await freePorts(1 + SHARDS);
  const logStore = await start("logstore", logStoreArgs(cluster, logStorePort!, limits));
  const shards = await Promise.all(shardPorts.map((port, id) => start("shard", shardArgs(cluster, id, port, limits))));
  const player = await start("logplayer", playerArgs(logStore, shards));
  // No limits given: the client learns the cluster's from Status, and sizes its channels for them.
  const client = await LogPlayerClient.connect({ logstore: logStore.address, shards: shards.map((s) => s.address), timeoutMs: 30_000 });
  expect(client.limits).toEqual({ ...DEFAULT_TRANSACTION_LIMITS, ...limits });
  return { logStore, shards, player, client, logStorePort: logStorePort!, shardPorts };
}

/** The first `count` keys of the form <prefix><n> that route to `shard`. */
function keysOn(shard: number, prefix: string, count: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) if (shardForKey(`${prefix}${i}`, SHARD_MAP) === shard) keys.push(`${prefix}${i}`);
  return keys;
}

/**
 * The largest transaction of PUTs to keys on `shard` whose encoded size is
 * `bytes`: full values of value_bytes_max, then one value that pads it out.
 */
function transactionOfBytes(shard: number, bytes: number, valueBytesMax: number): Mutation[] {
  const keys = keysOn(shard, `big-${shard}-`, 200);
  const mutations: Mutation[] = [];
  const size = (): number => transactionEncodedBytes({ mutations });
  while (size() + valueBytesMax + 64 <= bytes)
    mutations.push(mutation.put(keys[mutations.length]!, Buffer.alloc(valueBytesMax, 65 + shard)));
  const key = keys[mutations.length]!;
  mutations.push(mutation.put(key, Buffer.alloc(0)));
  // The length prefix of the padding value grows with it: settle on the exact size in a few steps.
  for (let step = 0; step < 4 && size() !== bytes; step++) {
    const last = mutations.at(-1)!;
    mutations[mutations.length - 1] = mutation.put(key, Buffer.alloc(Math.max(0, last.value.length + bytes - size()), 97));
  }
  return mutations;
}

describe("one set of cluster limits", () => {
  // Entries above the LogPlayer's and shards' old 16 MiB message cap, and values above the old hard-coded 256 KiB.
  const LIMITS = { entryBytesMax: 20 * 1024 * 1024, valueBytesMax: 400_000 };
  let cluster: Awaited<ReturnType<typeof startCluster>>;

  beforeAll(async () => {
    cluster = await startCluster("limits-cluster", LIMITS);
  });
  afterAll(() => cluster?.client.close());

  it("delivers the largest legal entry to every shard, and a value the old hard-coded limit refused", async () => {
    const { client, shards } = cluster;
    const lastLsnOf: bigint[] = [];
    // The LogStore wraps the transaction in a log entry (LSN, term, client id and seq): leave room for that.
    const entryOverheadBytes = 64;
    for (let shard = 0; shard < SHARDS; shard++) {
      const mutations = transactionOfBytes(shard, LIMITS.entryBytesMax - entryOverheadBytes, LIMITS.valueBytesMax);
      lastLsnOf.push((await client.commit(mutations)).lsn);
    }
    // Just above the limit is refused: what went through was the largest entry to within the overhead.
    const tooLarge = transactionOfBytes(0, LIMITS.entryBytesMax + 1, LIMITS.valueBytesMax);
    await expect(client.commit(tooLarge)).rejects.toThrow(/more than entry_bytes_max 20971520/);
    const [key300k] = keysOn(1, "v300k-", 1);
    const { lsn } = await client.commit([mutation.put(key300k!, Buffer.alloc(300_000, 120))]);
    for (let shard = 0; shard < SHARDS; shard++) {
      const [firstKey] = keysOn(shard, `big-${shard}-`, 1);
      const read = await client.get(firstKey!, { minLsn: lastLsnOf[shard]! });
      expect(read.value.length).toBe(LIMITS.valueBytesMax);
      expect(read.value.every((byte) => byte === 65 + shard)).toBe(true);
    }
    expect((await client.get(key300k!, { minLsn: lsn })).value.length).toBe(300_000);
    // And every shard moves on past it.
    const statuses = await Promise.all(shards.map((_, id) => client.shardStatus(id)));
    for (const status of statuses) expect(status.appliedLsn).toBeGreaterThanOrEqual(lastLsnOf[2]!);
  });

  it("refuses to start a LogStore, a shard or a LogPlayer whose flags disagree with the recorded limits", async () => {
    const { logStore, shards, logStorePort, shardPorts } = cluster;
    // Each data directory is held by its running process: stop them first, as an operator restarting with new flags would.
    await killHard(logStore.child);
    const logStoreRefusal = await startRefused("logstore", logStoreArgs("limits-cluster", logStorePort, { valueBytesMax: 300_000 }));
    expect(logStoreRefusal.code).toBe(1);
    expect(logStoreRefusal.output).toMatch(/--value-bytes-max 300000 \(recorded: 400000\) differs from the cluster's limits/);
    await killHard(shards[2]!.child);
    const shardRefusal = await startRefused("shard", shardArgs("limits-cluster", 2, shardPorts[2]!, { entryBytesMax: 1024 * 1024 }));
    expect(shardRefusal.code).toBe(1);
    expect(shardRefusal.output).toMatch(/but --entry-bytes-max 1048576 \(recorded: 20971520\); the limits are fixed/);
    // Restarted with the recorded values (or none), both come back.
    cluster.logStore = await start("logstore", logStoreArgs("limits-cluster", logStorePort, {}));
    cluster.shards[2] = await start("shard", shardArgs("limits-cluster", 2, shardPorts[2]!, LIMITS));
    const playerRefusal = await startRefused(
      "logplayer",
      playerArgs(cluster.logStore, cluster.shards, ["--message-bytes-max", "16777216"]),
    );
    expect(playerRefusal.code).toBe(1);
    expect(playerRefusal.output).toMatch(/--message-bytes-max 16777216 is below 21037056/);
  });

  it("a shard created with other limits than the LogStore's refuses the LogPlayer's stream, naming both", async () => {
    const [port] = await freePorts(1);
    const stray = await start(
      "shard",
      shardArgs("limits-cluster", 0, port!, {}).map((arg) => arg.replace("shard-0", "stray-0")),
    );
    const player = spawnService("logplayer", playerArgs(cluster.logStore, [stray, ...cluster.shards.slice(1)]));
    await waitFor("the LogPlayer reports the refusal", () => /limits mismatch/.test(player.output()), { timeoutMs: 30_000 });
    expect(player.output()).toMatch(/value-bytes-max 400000.*this shard recorded .*value-bytes-max 262144/);
    await killHard(player.child);
    await killHard(stray.child);
  });
});

describe("deterministic outcomes for every committed mutation", () => {
  const LIMITS = { valueBytesMax: 1000 };
  let cluster: Awaited<ReturnType<typeof startCluster>>;

  beforeAll(async () => {
    cluster = await startCluster("outcome-cluster", LIMITS);
  });
  afterAll(() => cluster?.client.close());

  it("an APPEND past value_bytes_max rejects its part on every shard alike, is readable per LSN, and later transactions apply", async () => {
    const { client } = cluster;
    const lists = [0, 1, 2].map((shard) => keysOn(shard, "list-", 1)[0]!);
    const others = [0, 1, 2].map((shard) => keysOn(shard, "other-", 1)[0]!);
    await client.commit(lists.map((key) => mutation.put(key, "x".repeat(900))));
    // 900 + 101 > 1000 on every shard: each shard's part (the APPEND and the PUT beside it) is rejected whole.
    const breaking = await client.commit([
      ...lists.map((key) => mutation.append(key, "y".repeat(101))),
      ...others.map((key) => mutation.put(key, "must not appear")),
    ]);
    // Exactly to the limit is fine, and so is everything after.
    const filling = await client.commit(lists.map((key) => mutation.append(key, "z".repeat(100))));
    const later = await client.commit(others.map((key) => mutation.put(key, "later")));

    const outcome = await client.outcome(breaking.lsn, [...lists, ...others]);
    expect(outcome.rejected).toBe(true);
    expect(outcome.shards.map((s) => [s.shardId, s.outcome])).toEqual([
      [0, "rejected"],
      [1, "rejected"],
      [2, "rejected"],
    ]);
    for (const shard of outcome.shards) {
      expect(shard.reason).toMatch(
        /^VALUE_TOO_LARGE: mutation 0 \(MUTATION_KIND_APPEND\) would make key .* 1001 bytes, more than value_bytes_max 1000/,
      );
    }
    expect((await client.outcome(filling.lsn, lists)).shards.every((s) => s.outcome === "applied")).toBe(true);
    for (const key of lists)
      expect((await client.get(key, { minLsn: later.lsn })).value.toString()).toBe(`${"x".repeat(900)}${"z".repeat(100)}`);
    for (const key of others) expect((await client.get(key, { minLsn: later.lsn })).value.toString()).toBe("later");
    // lpctl says the same, and exits 1 for a rejected transaction.
    const printed: string[] = [];
    const io = { stdout: (text: string) => printed.push(text), stderr: (text: string) => printed.push(text) };
    const addresses = ["--logstore", cluster.logStore.address, "--shards", cluster.shards.map((s) => s.address).join(",")];
    expect(await runLpctl([...addresses, "outcome", String(breaking.lsn), lists[0]!, others[2]!], io)).toBe(1);
    expect(printed.join("")).toMatch(/^shard 0: rejected \(VALUE_TOO_LARGE: .*\)\nshard 2: rejected \(VALUE_TOO_LARGE: .*\)\n$/);

    // The outcome is the log's, not the moment's: a shard that restarts and a LogPlayer that replays reach the same one.
    await killHard(cluster.shards[1]!.child);
    cluster.shards[1] = await start("shard", shardArgs("outcome-cluster", 1, cluster.shardPorts[1]!, {}));
    expect((await client.outcome(breaking.lsn, [lists[1]!])).shards[0]!.outcome).toBe("rejected");
    expect((await client.get(lists[1]!, { minLsn: later.lsn })).value.length).toBe(1000);
  });
});

describe("a shard's full disk", () => {
  // A real full file system: a small tmpfs (we are root in CI) holding one shard's data directory.
  it("stops acking with a clear status, keeps the process, and applies everything exactly once when space is freed", async () => {
    const mountPoint = path.join(tmp, "small-disk");
    fs.mkdirSync(mountPoint);
    const mounted = mountTmpfs(mountPoint, "8m");
    if (!mounted.ok) {
      // Locally without root this cannot run; CI is root and must run it.
      expect(process.env["CI"] === undefined ? "skipped locally" : mounted.reason).toBe("skipped locally");
      return;
    }
    let client: LogPlayerClient | undefined;
    const processes: ChildProcess[] = [];
    try {
      const [logStorePort, shardPort] = await freePorts(2);
      const logStore = await start("logstore", [
        ...["--data-dir", path.join(tmp, "full-disk", "logstore"), "--shard-count", "1", "--cluster-id", "full-disk"],
        ...["--listen", `127.0.0.1:${logStorePort}`, "--metrics-port", "-1"],
      ]);
      const shardDir = path.join(mountPoint, "shard-0");
      const shardFlags = ["--shard-id", "0", "--shard-count", "1", "--cluster-id", "full-disk", "--data-dir", shardDir];
      const shard = await start("shard", [...shardFlags, "--listen", `127.0.0.1:${shardPort}`, "--metrics-port", "-1"]);
      const player = spawnService("logplayer", playerArgs(logStore, [shard]));
      processes.push(logStore.child, shard.child, player.child);
      client = await LogPlayerClient.connect({ logstore: logStore.address, shards: [shard.address], timeoutMs: 30_000 });
      const first = await client.commit([mutation.put("warm-up", "1")]);
      await client.get("warm-up", { minLsn: first.lsn });

      const filler = path.join(mountPoint, "filler");
      await fillUntilFree(filler, mountPoint, 256 * 1024);
      // APPEND is not idempotent: a transaction applied twice, or lost, shows in the values. 600 KB in all, each list
      // below value_bytes_max (256 KiB), against 256 KB free.
      const tokens = Array.from({ length: 60 }, (_, i) => `${i}:${"t".repeat(10_000)},`);
      let lastLsn = 0n;
      for (const [i, token] of tokens.entries()) lastLsn = (await client.commit([mutation.append(`list-${i % 4}`, token)])).lsn;

      await waitFor("the shard reports its full disk", async () => /^disk full: /.test((await client!.shardStatus(0)).diskFull), {
        timeoutMs: 30_000,
        intervalMs: 100,
      });
      const stalled = await client.shardStatus(0);
      expect(stalled.appliedLsn).toBeLessThan(lastLsn);
      expect(stalled.diskFull).toMatch(new RegExp(`^disk full: no space left for the shard database in ${shardDir}`));
      await waitFor("the LogPlayer sees RESOURCE_EXHAUSTED, not a crash", () => /RESOURCE_EXHAUSTED/.test(player.output()));
      // Still serving reads of what it has.
      expect((await client.get("warm-up")).value.toString()).toBe("1");
      expect(shard.child.exitCode).toBeNull();

      fs.rmSync(filler);
      // Each list holds its tokens' numbers once each, in commit order: nothing lost, nothing twice.
      const tokenNumbers = (value: string): string[] =>
        value
          .split(",")
          .filter((t) => t !== "")
          .map((t) => t.split(":")[0]!);
      for (let i = 0; i < 4; i++) {
        const expected = tokens.filter((_, k) => k % 4 === i).join("");
        const value = (await client.get(`list-${i}`, { minLsn: lastLsn })).value.toString();
        expect(tokenNumbers(value)).toEqual(tokenNumbers(expected));
        expect(value === expected).toBe(true);
      }
      expect((await client.shardStatus(0)).diskFull).toBe("");
      expect(shard.child.exitCode).toBeNull();
    } finally {
      client?.close();
      await Promise.all(processes.map(killHard));
      unmount(mountPoint);
    }
  });
});
