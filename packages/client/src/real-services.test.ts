/*
 * Smoke test against the real services (built dist/main.js), skipped when
 * they are not built (a failure under CI): the client and lpctl, end to end, through a LogPlayer.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { createTestTls, waitFor, type TestTls } from "@logplayer/testing";
import { LogPlayerClient } from "./client";
import { runLpctl } from "./lpctl-run";
import { mutation } from "./mutations";

const ROOT = path.resolve(__dirname, "../../..");
const MAIN = (service: string): string => path.join(ROOT, "services", service, "dist", "main.js");
const LPCTL = path.join(ROOT, "packages", "client", "dist", "lpctl.js");
const missingBuild = [...["logstore", "shard", "logplayer"].map(MAIN), LPCTL].filter((file) => !existsSync(file));
const built = missingBuild.length === 0;
const READY_TIMEOUT_MS = 20_000;
/** Small, so that a few clients push an older one's session out of the LogStore's dedupe table. */
const DEDUPE_CLIENTS_MAX = 4;

// mTLS, as the services run by default: one test CA, made in beforeAll.
let tls: TestTls;

interface Started {
  child: ChildProcess;
  port: number;
}

/** Starts a service on port 0 and resolves with the gRPC port from its "ready" log line. */
function startService(service: string, args: string[]): Promise<Started> {
  const child = spawn(
    process.execPath,
    [MAIN(service), "--listen", "127.0.0.1:0", "--metrics-port", "-1", "--log-level", "info", ...tls.serviceFlags, ...args],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${service} not ready in ${READY_TIMEOUT_MS} ms: ${stderr}`)), READY_TIMEOUT_MS);
    child.once("exit", (code) => reject(new Error(`${service} exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        const record = JSON.parse(line) as { msg?: string; grpcPort?: number };
        if (record.msg === "ready" && typeof record.grpcPort === "number") {
          clearTimeout(timer);
          resolve({ child, port: record.grpcPort });
        }
      } catch {
        // Not a JSON log line; ignore.
      }
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill("SIGKILL"), 8_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

// Locally a missing build skips this test; in CI it is a failure (a skipped smoke test proves nothing).
if (!built && process.env["CI"]) {
  test("the services and lpctl are built (CI runs this smoke test, never skips it)", () => {
    expect(missingBuild).toEqual([]);
  });
}

(built ? describe : describe.skip)("client and lpctl against the real services", () => {
  const children: ChildProcess[] = [];
  let dir = "";
  let logstore = "";
  const shards: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "lp-client-smoke-"));
    tls = await createTestTls([{ role: "admin", name: "lpctl" }]);
    for (let id = 0; id < 2; id++) {
      const shard = await startService("shard", [
        "--shard-id",
        String(id),
        "--shard-count",
        "2",
        "--cluster-id",
        "smoke",
        "--data-dir",
        path.join(dir, `shard-${id}`),
      ]);
      children.push(shard.child);
      shards.push(`127.0.0.1:${shard.port}`);
    }
    const store = await startService("logstore", [
      "--data-dir",
      path.join(dir, "logstore"),
      "--shard-count",
      "2",
      "--cluster-id",
      "smoke",
      "--dedupe-clients-max",
      String(DEDUPE_CLIENTS_MAX),
      "--shard-addresses",
      shards.join(","),
    ]);
    children.push(store.child);
    logstore = `127.0.0.1:${store.port}`;
    const player = await startService("logplayer", ["--logstore", logstore, "--shards", shards.join(",")]);
    children.push(player.child);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(children.map(stop));
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
    tls?.remove();
  });

  it("commits a multi-shard transaction and reads it back with read-your-writes", async () => {
    const client = await LogPlayerClient.connect({
      logstore,
      shards,
      timeoutMs: 10_000,
      security: tls.security({ role: "client", name: "test" }),
    });
    try {
      expect(client.clusterId).toBe("smoke");
      const keys = ["smoke:a", "smoke:b", "smoke:c", "smoke:d"];
      expect(new Set(keys.map((k) => client.shardForKey(k))).size).toBe(2);
      const { lsn } = await client.commit([...keys.map((k) => mutation.put(k, k.toUpperCase())), mutation.add("smoke:n", 3)]);
      await client.commit([mutation.add("smoke:n", 4), mutation.append("smoke:a", "!")]);
      const a = await client.get("smoke:a", { minLsn: lsn + 1n });
      expect(a.value.toString()).toBe("SMOKE:A!");
      expect((await client.get("smoke:n", { minLsn: lsn + 1n })).value.toString()).toBe("7");
      const scan = await client.scan("smoke:", { minLsn: lsn + 1n });
      expect(scan.items.map((i) => i.key)).toEqual([...keys, "smoke:n"]);
      const status = await client.clusterStatus();
      expect(status.shards.every((s) => s.status !== undefined && s.lag !== undefined && s.lag >= 0n)).toBe(true);
    } finally {
      client.close();
    }
  });

  it("discovery: a client and lpctl given only the LogStore's address learn the shards from its Status", async () => {
    const client = await LogPlayerClient.connect({
      seeds: [logstore],
      timeoutMs: 10_000,
      security: tls.security({ role: "client", name: "test" }),
    });
    try {
      const { lsn } = await client.commit([mutation.put("seed:a", "1"), mutation.put("seed:b", "2"), mutation.put("seed:c", "3")]);
      expect((await client.scan("seed:", { minLsn: lsn })).items.map((i) => i.key)).toEqual(["seed:a", "seed:b", "seed:c"]);
      expect((await client.clusterStatus()).shards.map((s) => s.address)).toEqual(shards);
    } finally {
      client.close();
    }
    let stdout = "";
    const code = await runLpctl(["--seeds", logstore, "--tls-dir", tls.dir, "--timeout-ms", "10000", "get", "seed:b"], {
      stdout: (t) => (stdout += t),
      stderr: (t) => (stdout += t),
    });
    expect([code, stdout]).toEqual([0, "2\n"]);
  });

  it("lpctl put/get/txn/status/health work as documented", async () => {
    let stdout = "";
    const flags = ["--logstore", logstore, "--shards", shards.join(","), "--timeout-ms", "10000", "--tls-dir", tls.dir];
    const run = (...args: string[]): Promise<number> =>
      runLpctl([...flags, ...args], { stdout: (t) => (stdout += t), stderr: (t) => (stdout += t) });
    expect(await run("txn", "put:cli:x=1", "add:cli:y=5")).toBe(0);
    const lsn = /committed lsn=(\d+)/.exec(stdout)![1]!;
    stdout = "";
    expect(await run("get", "cli:y", "--min-lsn", lsn)).toBe(0);
    expect(stdout).toBe("5\n");
    stdout = "";
    expect(await run("status")).toBe(0);
    expect(stdout).toContain("cluster smoke  shard_map=fnv1a32/2");
    // The built binary, as docker-compose and people run it.
    const health = spawnSync(process.execPath, [LPCTL, "--tls-dir", tls.dir, "health", shards[0]!], { encoding: "utf8", timeout: 20_000 });
    expect([health.status, health.stdout]).toEqual([0, "SERVING\n"]);
    const get = spawnSync(process.execPath, [LPCTL, ...flags, "get", "cli:x", "--min-lsn", lsn], { encoding: "utf8", timeout: 20_000 });
    expect([get.status, get.stdout]).toEqual([0, "1\n"]);
    const missing = spawnSync(process.execPath, [LPCTL, ...flags, "get", "cli:none"], { encoding: "utf8", timeout: 20_000 });
    expect([missing.status, missing.stdout]).toEqual([2, "(not found)\n"]);
  });

  it("the lpctl binary takes a value larger than an argument can hold from stdin, up to value_bytes_max and not past it", async () => {
    const flags = ["--logstore", logstore, "--shards", shards.join(","), "--timeout-ms", "10000", "--tls-dir", tls.dir];
    // 256 KiB, the default value_bytes_max: more than one command-line argument may hold (128 KiB on Linux).
    const value = Buffer.alloc(256 * 1024, "v");
    const put = spawnSync(process.execPath, [LPCTL, ...flags, "put", "big:v", "-"], { input: value, encoding: "utf8", timeout: 20_000 });
    expect([put.status, put.stderr]).toEqual([0, expect.not.stringContaining("lpctl:")]);
    const lsn = /committed lsn=(\d+)/.exec(put.stdout)![1]!;
    const client = await LogPlayerClient.connect({
      logstore,
      shards,
      timeoutMs: 10_000,
      security: tls.security({ role: "client", name: "test" }),
    });
    try {
      expect((await client.get("big:v", { minLsn: BigInt(lsn) })).value.equals(value)).toBe(true);
    } finally {
      client.close();
    }
    const over = Buffer.alloc(256 * 1024 + 1, "v");
    const refused = spawnSync(process.execPath, [LPCTL, ...flags, "put", "big:w", "-"], { input: over, encoding: "utf8", timeout: 20_000 });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^lpctl: RESOURCE_EXHAUSTED: .*value_bytes_max/m);
  });

  it("lpctl tail, watch and members read the live cluster; tail stops cleanly on Ctrl-C", async () => {
    let stdout = "";
    const flags = ["--logstore", logstore, "--shards", shards.join(","), "--timeout-ms", "10000", "--tls-dir", tls.dir];
    const run = (...args: string[]): Promise<number> =>
      runLpctl([...flags, ...args], { stdout: (t) => (stdout += t), stderr: (t) => (stdout += t) });
    expect(await run("txn", "put:tail:a=1", "put:other=2")).toBe(0);
    const lsn = /committed lsn=(\d+)/.exec(stdout)![1]!;
    stdout = "";
    expect(await run("tail", "--from", lsn, "--to", lsn)).toBe(0);
    expect(stdout).toMatch(new RegExp(`^lsn=${lsn} term=\\d+ client=\\S+ seq=1  put "tail:a" "1"; put "other" "2"\n$`));
    stdout = "";
    expect(await run("--json", "watch", "tail:", "--from", "1", "--to", lsn)).toBe(0);
    expect(
      stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as unknown),
    ).toEqual([{ lsn, kind: "put", key: "tail:a", value: "1" }]);
    stdout = "";
    expect(await run("members")).toBe(0);
    expect(stdout).toMatch(new RegExp(`^replica \\S+  ${logstore}  role=leader  term=\\d+  last_lsn=\\d+  commit_lsn=\\d+\n$`));
    // The built binary, tailing until Ctrl-C: it prints what commits after it started and exits 0.
    const tail = spawn(process.execPath, [LPCTL, ...flags, "tail"], { stdio: ["ignore", "pipe", "pipe"] });
    let tailed = "";
    tail.stdout!.on("data", (chunk: Buffer) => (tailed += chunk.toString()));
    tail.stderr!.on("data", (chunk: Buffer) => (tailed += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => tail.once("exit", (code) => resolve(code)));
    // The tail may start reading after a first commit: commit until one shows up (bounded).
    await waitFor("lpctl tail to print a committed entry", async () => {
      await run("put", "tail:live", "x");
      return tailed.includes('put "tail:live" "x"');
    });
    tail.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(tailed).not.toContain("lpctl:");
  });

  it("a client whose session other clients evicted registers again; lookupAppend and lpctl lookup find a commit", async () => {
    const connect = (clientId?: string): Promise<LogPlayerClient> =>
      LogPlayerClient.connect({
        logstore,
        shards,
        timeoutMs: 10_000,
        security: tls.security({ role: "client", name: "test" }),
        ...(clientId === undefined ? {} : { clientId }),
      });
    const a = await connect("smoke-a");
    const others: LogPlayerClient[] = [];
    try {
      const first = await a.commit([mutation.put("session:a", "1")]);
      const session = a.sessionLsn!;
      expect(session).toBeGreaterThan(0n);
      expect(await a.lookupAppend({ clientSeq: 1n })).toEqual({ state: "committed", lsn: first.lsn });
      for (let i = 0; i < DEDUPE_CLIENTS_MAX; i++) {
        const other = await connect();
        others.push(other);
        await other.commit([mutation.put(`session:other-${i}`, "x")]);
      }
      // The first attempt is refused SESSION_EXPIRED on the AppendStream (nothing appended), so it is sent again in a new session.
      const second = await a.commit([mutation.put("session:a", "2")]);
      expect(a.sessionLsn).toBeGreaterThan(session);
      expect((await a.get("session:a", { minLsn: second.lsn })).value.toString()).toBe("2");
      let stdout = "";
      const flags = ["--logstore", logstore, "--shards", shards.join(","), "--timeout-ms", "10000", "--tls-dir", tls.dir];
      const lookup = (...args: string[]): Promise<number> =>
        runLpctl([...flags, "lookup", ...args], { stdout: (t) => (stdout += t), stderr: (t) => (stdout += t) });
      // The first session is gone: the LogStore searches its log from the session's LSN.
      expect(await lookup("smoke-a", "1", "--session-lsn", String(session))).toBe(0);
      expect(stdout).toBe(`committed lsn=${first.lsn}\n`);
      stdout = "";
      expect(await lookup("smoke-a", "7", "--session-lsn", String(session))).toBe(2);
      expect(stdout).toMatch(/^not appended \(/);
    } finally {
      a.close();
      for (const other of others) other.close();
    }
  });

  // Last: it stops a shard.
  it("lpctl status exits 0 on the healthy cluster and 1, with the reason in --json, once a shard is down", async () => {
    let stdout = "";
    const flags = ["--logstore", logstore, "--shards", shards.join(","), "--timeout-ms", "10000", "--tls-dir", tls.dir, "--json"];
    const run = (...args: string[]): Promise<number> =>
      runLpctl([...flags, ...args], { stdout: (t) => (stdout += t), stderr: () => undefined });
    await waitFor("the shards to catch up", async () => {
      stdout = "";
      return (await run("status", "--lag-max", "0")) === 0;
    });
    expect(JSON.parse(stdout)).toMatchObject({ healthy: true, problems: [] });
    await stop(children[1]!);
    stdout = "";
    expect(await run("status")).toBe(1);
    const report = JSON.parse(stdout) as { healthy: boolean; problems: string[] };
    expect(report.healthy).toBe(false);
    expect(report.problems).toEqual([expect.stringMatching(new RegExp(`^shard 1 at ${shards[1]} does not answer`))]);
  });
});
