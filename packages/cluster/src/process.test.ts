// ManagedProcess against a stand-in service script (no real services needed):
// ready-line detection, log files, start failures with the log tail, stop, kill, restart.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { findReadyLine, ManagedProcess } from "./process";
import type { ProcessSpec } from "./plan";

// Behaves like a service: logs JSON lines, "ready" with its ports, exits 0 on SIGTERM.
const FAKE_SERVICE = `
const args = process.argv.slice(2);
const value = (name) => args[args.indexOf(name) + 1];
if (args.includes("--fail")) { process.stderr.write("fake: bad flag --fail\\n"); process.exit(3); }
console.log(JSON.stringify({ level: "info", msg: "starting", pid: process.pid }));
process.stdout.write("not json at all\\n");
if (!args.includes("--hang")) {
  setTimeout(() => console.log(JSON.stringify({ level: "info", msg: "ready", grpcPort: Number(value("--listen").split(":")[1]), metricsPort: 4321 })), 50);
}
process.on("SIGTERM", () => { console.log(JSON.stringify({ msg: "stopping" })); process.exit(args.includes("--ignore-term") ? 1 : 0); });
if (args.includes("--ignore-term")) process.removeAllListeners("SIGTERM"), process.on("SIGTERM", () => {});
setInterval(() => {}, 1000);
`;

describe("ManagedProcess", () => {
  let root: string;
  const started: ManagedProcess[] = [];

  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "lp-cluster-process-"));
    fs.writeFileSync(path.join(root, "pnpm-workspace.yaml"), "packages: []\n");
    const dist = path.join(root, "services", "shard", "dist");
    fs.mkdirSync(dist, { recursive: true });
    fs.writeFileSync(path.join(dist, "main.js"), FAKE_SERVICE);
  });
  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  });

  function fake(
    name: string,
    extra: string[] = [],
    options: { readyTimeoutMs?: number; stopTimeoutMs?: number; readyProbe?: (spec: ProcessSpec) => Promise<boolean> } = {},
  ): ManagedProcess {
    const spec: ProcessSpec = {
      name,
      service: "shard",
      args: ["--listen", "127.0.0.1:5555", ...extra],
      env: {},
      grpcAddress: "127.0.0.1:5555",
      grpcPort: 5555,
      metricsPort: 4321,
      dataDir: path.join(root, "data", name),
    };
    const p = new ManagedProcess(spec, { logDir: path.join(root, "logs"), repoRoot: root, ...options });
    started.push(p);
    return p;
  }

  it("starts, reports the ready line's ports, logs to <logDir>/<name>.log, and stops with SIGTERM", async () => {
    const p = fake("ok");
    const ready = await p.start();
    expect(ready).toEqual({ grpcPort: 5555, metricsPort: 4321 });
    expect(p.running).toBe(true);
    expect(typeof p.pid).toBe("number");
    expect(fs.existsSync(path.join(root, "data", "ok"))).toBe(true);
    const exit = await p.stop();
    expect(exit).toEqual({ code: 0, signal: null, expected: true });
    expect(p.running).toBe(false);
    const log = fs.readFileSync(path.join(root, "logs", "ok.log"), "utf8");
    expect(log).toContain('"msg":"ready"');
    expect(log).toContain('"msg":"stopping"');
  });

  it("fails a start with the exit code and the last lines of the log", async () => {
    const p = fake("bad", ["--fail"]);
    await expect(p.start()).rejects.toThrow(/bad exited before it was ready \(exit code 3\)[\s\S]*fake: bad flag --fail/);
    expect(p.running).toBe(false);
  });

  it("fails a start that never becomes ready within the bound, and kills the process", async () => {
    const p = fake("hang", ["--hang"], { readyTimeoutMs: 500 });
    await expect(p.start()).rejects.toThrow(/hang was not ready within 500 ms/);
    expect(p.running).toBe(false);
    expect(p.lastExit?.signal).toBe("SIGKILL");
  });

  it("with a quiet log level, takes a SERVING ready probe as ready, on the planned ports", async () => {
    const probed: string[] = [];
    const probe = async (spec: ProcessSpec): Promise<boolean> => {
      probed.push(spec.grpcAddress);
      return probed.length >= 2;
    };
    const p = fake("quiet", ["--hang"], { readyTimeoutMs: 10_000, readyProbe: probe });
    expect(await p.start()).toEqual({ grpcPort: 5555, metricsPort: 4321 });
    expect(probed).toEqual(["127.0.0.1:5555", "127.0.0.1:5555"]);
    await p.stop();
  });

  it("kill then restart: waits for the old run to end, appends to the same log, reports unexpected exits", async () => {
    const p = fake("again");
    const exits: boolean[] = [];
    p.onExit((info) => exits.push(info.expected));
    await p.start();
    const firstPid = p.pid;
    p.kill("SIGKILL");
    await p.restart();
    expect(p.running).toBe(true);
    expect(p.pid).not.toBe(firstPid);
    expect(p.starts).toBe(2);
    const log = fs.readFileSync(path.join(root, "logs", "again.log"), "utf8");
    expect(log.match(/"msg":"ready"/g)).toHaveLength(2);
    // Now a death nobody asked for.
    process.kill(p.pid!, "SIGKILL");
    const exit = await p.exited;
    expect(exit).toEqual({ code: null, signal: "SIGKILL", expected: false });
    expect(exits).toEqual([true, false]);
  });

  it("escalates to SIGKILL when SIGTERM is ignored past the stop bound", async () => {
    const p = fake("stubborn", ["--ignore-term"], { stopTimeoutMs: 300 });
    await p.start();
    const exit = await p.stop();
    expect(exit?.signal).toBe("SIGKILL");
  });
});

describe("findReadyLine", () => {
  it("finds the pino ready line with numeric ports and skips everything else", () => {
    expect(findReadyLine(['garbage "ready"', '{"msg":"ready","grpcPort":"1"}', '{"msg":"not ready"}'])).toBeUndefined();
    expect(findReadyLine(['{"msg":"x"}', '{"level":"info","msg":"ready","grpcPort":7100,"metricsPort":-1}'])).toEqual({
      grpcPort: 7100,
      metricsPort: -1,
    });
  });
});
