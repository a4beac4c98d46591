import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { waitFor } from "@logplayer/testing";
import { DataDirInUseError, lockDataDir } from "./data-dir-lock";

const DIST_INDEX = path.join(__dirname, "..", "dist", "index.js");

/** A real second process that takes the lock and keeps it until killed. */
async function holdInChild(dir: string): Promise<ChildProcess> {
  const script = `const { lockDataDir } = require(${JSON.stringify(DIST_INDEX)});
    lockDataDir(${JSON.stringify(dir)}, "test holder"); process.stdout.write("locked\\n"); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await waitFor("the child holds the lock", () => output.includes("locked"), { timeoutMs: 10_000 });
  return child;
}

async function killAndWait(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  await exited;
}

describe("lockDataDir", () => {
  let dir: string;
  const children: ChildProcess[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lp-dirlock-"));
  });
  afterEach(async () => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) await killAndWait(child, "SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a second process and names the holder's pid, then is free once the holder is SIGKILLed", async () => {
    const child = await holdInChild(dir);
    children.push(child);
    let refused: unknown;
    try {
      lockDataDir(dir, "second");
    } catch (err: unknown) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(DataDirInUseError);
    const inUse = refused as DataDirInUseError;
    expect(inUse.holder?.pid).toBe(child.pid);
    expect(inUse.message).toContain(dir);
    expect(inUse.message).toContain(`pid ${child.pid}`);
    expect(inUse.message).toContain("test holder");

    await killAndWait(child, "SIGKILL");
    const lock = lockDataDir(dir, "after the kill");
    lock.release();
  });

  it("keeps the lock while the holder is paused (a zombie cannot share the directory)", async () => {
    const child = await holdInChild(dir);
    children.push(child);
    child.kill("SIGSTOP");
    try {
      expect(() => lockDataDir(dir, "while paused")).toThrow(DataDirInUseError);
    } finally {
      child.kill("SIGCONT");
    }
  });

  it("refuses a second lock in the same process until the first is released", () => {
    const first = lockDataDir(dir, "first");
    expect(() => lockDataDir(dir, "second")).toThrow(DataDirInUseError);
    first.release();
    first.release(); // idempotent
    lockDataDir(dir, "third").release();
  });

  it("creates a missing directory", () => {
    const nested = path.join(dir, "a", "b");
    const lock = lockDataDir(nested, "nested");
    expect(fs.existsSync(path.join(nested, "LOCK"))).toBe(true);
    lock.release();
  });
});
