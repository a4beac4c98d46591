import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { assert } from "@logplayer/common";
import type { ProcessSpec, ServiceName } from "./plan";

/** What a service reports in its one `"msg":"ready"` log line. */
export interface ReadyInfo {
  grpcPort: number;
  metricsPort: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the launcher asked for it (stop, kill, restart). */
  expected: boolean;
}

export interface ManagedProcessOptions {
  /** Directory of the per-process log files (`<logDir>/<name>.log`). */
  logDir: string;
  /** Repository root holding services/<svc>/dist/main.js. Default: found from this file. */
  repoRoot?: string;
  /** Bound on start-up, from spawn to the ready line. */
  readyTimeoutMs?: number;
  /** Bound on a graceful stop before SIGKILL. */
  stopTimeoutMs?: number;
  /**
   * A second way to see readiness, for log levels that hide the (info) ready
   * line: resolves true once the service answers SERVING on its gRPC health
   * service. The planned ports are then taken as the ready ports.
   */
  readyProbe?: (spec: ProcessSpec) => Promise<boolean>;
}

export const READY_TIMEOUT_MS_DEFAULT = 30_000;
// Services bound their own graceful shutdown to ~5 s; leave them room.
export const STOP_TIMEOUT_MS_DEFAULT = 8_000;
const READY_POLL_INTERVAL_MS = 25;
const READY_PROBE_INTERVAL_MS = 200;
const LOG_TAIL_BYTES_MAX = 8 * 1024;
const LOG_TAIL_LINES_MAX = 20;
const READY_LINE_BYTES_MAX = 64 * 1024;

/**
 * One service running as a child process. Its stdout and stderr go straight
 * to its log file (the launcher copies nothing, so a busy service costs the
 * launcher no CPU); start() tails that file until the ready line appears.
 * The child gets its own process group, so a Ctrl-C in the terminal reaches
 * only the launcher, which then stops the children in order.
 */
export class ManagedProcess {
  readonly spec: ProcessSpec;
  readonly logFile: string;
  readonly #options: Required<Omit<ManagedProcessOptions, "repoRoot" | "readyProbe">> & { repoRoot: string };
  readonly #readyProbe: ((spec: ProcessSpec) => Promise<boolean>) | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null, expected: true });
  #lastExit: ExitInfo | undefined;
  #expectExit = false;
  #ready: ReadyInfo | undefined;
  #starts = 0;
  readonly #exitListeners = new Set<(info: ExitInfo) => void>();

  constructor(spec: ProcessSpec, options: ManagedProcessOptions) {
    this.spec = spec;
    this.logFile = path.join(options.logDir, `${spec.name}.log`);
    this.#options = {
      logDir: options.logDir,
      repoRoot: options.repoRoot ?? findRepoRoot(),
      readyTimeoutMs: options.readyTimeoutMs ?? READY_TIMEOUT_MS_DEFAULT,
      stopTimeoutMs: options.stopTimeoutMs ?? STOP_TIMEOUT_MS_DEFAULT,
    };
    this.#readyProbe = options.readyProbe;
    assert(this.#options.readyTimeoutMs > 0 && this.#options.stopTimeoutMs > 0, "timeouts are positive");
  }

  get name(): string {
    return this.spec.name;
  }

  /** The running child's pid, or undefined when it is not running. */
  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Resolves when the current (or last) run ends; never rejects. */
  get exited(): Promise<ExitInfo> {
    return this.#exited;
  }

  /** Calls `listener` each time a run of the process ends; returns an unsubscribe function. */
  onExit(listener: (info: ExitInfo) => void): () => void {
    this.#exitListeners.add(listener);
    return () => this.#exitListeners.delete(listener);
  }

  get lastExit(): ExitInfo | undefined {
    return this.#lastExit;
  }

  /** Ports from the last ready line. */
  get ready(): ReadyInfo | undefined {
    return this.#ready;
  }

  /** How many times the process was started. */
  get starts(): number {
    return this.#starts;
  }

  get scriptPath(): string {
    return serviceScript(this.#options.repoRoot, this.spec.service);
  }

  /** Spawns the service and resolves once it logs "ready"; throws with its log tail otherwise. */
  async start(): Promise<ReadyInfo> {
    assert(!this.running, `${this.name} is already running`);
    const script = this.scriptPath;
    if (!fs.existsSync(script)) {
      throw new Error(`${this.name}: ${script} not found; build the services first (pnpm build)`);
    }
    fs.mkdirSync(path.dirname(this.logFile), { recursive: true });
    if (this.spec.dataDir !== undefined) fs.mkdirSync(this.spec.dataDir, { recursive: true });
    const logFd = fs.openSync(this.logFile, "a");
    const logOffset = fs.fstatSync(logFd).size;
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [script, ...this.spec.args], {
        env: { ...process.env, ...this.spec.env },
        stdio: ["ignore", logFd, logFd],
        detached: true,
      });
    } finally {
      // The child holds its own copy of the descriptor.
      fs.closeSync(logFd);
    }
    this.#watch(child);
    this.#starts += 1;
    this.#ready = undefined;
    try {
      this.#ready = await this.#waitForReady(child, logOffset);
    } catch (err: unknown) {
      this.#expectExit = true;
      if (this.running) child.kill("SIGKILL");
      await this.#exited;
      throw err;
    }
    return this.#ready;
  }

  #watch(child: ChildProcess): void {
    this.#child = child;
    this.#expectExit = false;
    this.#exited = new Promise<ExitInfo>((resolve) => {
      let settled = false;
      const settle = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (settled) return;
        settled = true;
        const info: ExitInfo = { code, signal, expected: this.#expectExit };
        this.#lastExit = info;
        resolve(info);
        for (const listener of this.#exitListeners) listener(info);
      };
      child.once("exit", settle);
      // A failed spawn emits "error" and may never emit "exit".
      child.once("error", () => settle(child.exitCode, child.signalCode));
    });
    liveChildren.add(child);
    void this.#exited.then(() => liveChildren.delete(child));
  }

  async #waitForReady(child: ChildProcess, logOffset: number): Promise<ReadyInfo> {
    const deadline = Date.now() + this.#options.readyTimeoutMs;
    const reader = new LogLineReader(this.logFile, logOffset);
    let exit: ExitInfo | undefined;
    void this.#exited.then((info) => (exit = info));
    let waiting = true;
    const probe = this.#startReadyProbe(() => waiting && exit === undefined && Date.now() < deadline);
    try {
      return await this.#pollForReady(child, reader, probe, deadline, () => exit);
    } finally {
      waiting = false;
    }
  }

  async #pollForReady(
    child: ChildProcess,
    reader: LogLineReader,
    probe: { serving: boolean },
    deadline: number,
    exited: () => ExitInfo | undefined,
  ): Promise<ReadyInfo> {
    for (;;) {
      // Exit first: a probe answered by some other process on the port must not count for a child that died.
      const exit = exited();
      if (exit !== undefined || child.exitCode !== null || child.signalCode !== null) {
        const info = exit ?? { code: child.exitCode, signal: child.signalCode };
        throw new Error(`${this.name} exited before it was ready (${describeExit(info)})\n${this.logTail()}`);
      }
      const ready = findReadyLine(reader.readNewLines()) ?? (probe.serving ? this.#plannedPorts() : undefined);
      if (ready) {
        this.#checkPort(ready);
        return ready;
      }
      if (Date.now() >= deadline) {
        throw new Error(`${this.name} was not ready within ${this.#options.readyTimeoutMs} ms\n${this.logTail()}`);
      }
      await Promise.race([sleep(READY_POLL_INTERVAL_MS), this.#exited]);
    }
  }

  /** Polls the ready probe (if any) in the background, one call at a time, while `active()`. */
  #startReadyProbe(active: () => boolean): { serving: boolean } {
    const state = { serving: false };
    const probe = this.#readyProbe;
    if (probe === undefined) return state;
    const spec = this.spec;
    void (async () => {
      while (active() && !state.serving) {
        await sleep(READY_PROBE_INTERVAL_MS);
        state.serving = await probe(spec).catch(() => false);
      }
    })();
    return state;
  }

  #plannedPorts(): ReadyInfo {
    return { grpcPort: this.spec.grpcPort, metricsPort: this.spec.metricsPort };
  }

  #checkPort(ready: ReadyInfo): void {
    if (this.spec.grpcPort !== 0 && ready.grpcPort !== this.spec.grpcPort) {
      throw new Error(`${this.name} reported gRPC port ${ready.grpcPort}, planned ${this.spec.grpcPort}`);
    }
  }

  /** Sends a signal (SIGKILL by default) and returns without waiting; see `exited`. */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (!this.running) return;
    this.#expectExit = true;
    this.#child!.kill(signal);
  }

  /** SIGTERM, then SIGKILL once the stop timeout passes. Resolves when the process is gone. */
  async stop(): Promise<ExitInfo | undefined> {
    if (!this.running) {
      // It may have been signalled and not yet reaped.
      return this.#child === undefined ? undefined : this.#exited;
    }
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), this.#options.stopTimeoutMs);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops the process if it runs (or waits for a kill to land), then starts it again. */
  async restart(): Promise<ReadyInfo> {
    await this.stop();
    return this.start();
  }

  /** The last lines of the log file, for error messages. */
  logTail(linesMax = LOG_TAIL_LINES_MAX): string {
    const lines = readLogTail(this.logFile, LOG_TAIL_BYTES_MAX, linesMax);
    if (lines.length === 0) return `(log ${this.logFile} is empty)`;
    return `last lines of ${this.logFile}:\n${lines.map((l) => `  ${l}`).join("\n")}`;
  }
}

export function describeExit(info: { code: number | null; signal: NodeJS.Signals | null }): string {
  if (info.signal !== null) return `signal ${info.signal}`;
  return `exit code ${info.code ?? "unknown"}`;
}

/**
 * Finds the service's `"msg":"ready"` line among pino JSON lines. Lines that
 * are not JSON (a stack trace on stderr, say) are skipped. Pure.
 */
export function findReadyLine(lines: readonly string[]): ReadyInfo | undefined {
  for (const line of lines) {
    if (!line.includes('"ready"')) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof parsed !== "object" || parsed === null) continue;
    const record = parsed as Record<string, unknown>;
    if (record.msg !== "ready") continue;
    const { grpcPort, metricsPort } = record;
    if (typeof grpcPort === "number" && typeof metricsPort === "number") return { grpcPort, metricsPort };
  }
  return undefined;
}

/** Reads complete lines appended to a file since an offset, a poll at a time. */
class LogLineReader {
  readonly #file: string;
  #offset: number;
  #partial = "";

  constructor(file: string, offset: number) {
    this.#file = file;
    this.#offset = offset;
  }

  readNewLines(): string[] {
    let fd: number;
    try {
      fd = fs.openSync(this.#file, "r");
    } catch {
      return [];
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= this.#offset) return [];
      const buffer = Buffer.alloc(Math.min(size - this.#offset, READY_LINE_BYTES_MAX));
      const bytes = fs.readSync(fd, buffer, 0, buffer.length, this.#offset);
      this.#offset += bytes;
      const text = this.#partial + buffer.subarray(0, bytes).toString("utf8");
      const lines = text.split("\n");
      this.#partial = lines.pop() ?? "";
      // A line longer than the bound is not a ready line; drop it rather than grow.
      if (this.#partial.length > READY_LINE_BYTES_MAX) this.#partial = "";
      return lines;
    } finally {
      fs.closeSync(fd);
    }
  }
}

function readLogTail(file: string, bytesMax: number, linesMax: number): string[] {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return [];
  }
  try {
    const size = fs.fstatSync(fd).size;
    const length = Math.min(size, bytesMax);
    const buffer = Buffer.alloc(length);
    fs.readSync(fd, buffer, 0, length, size - length);
    const lines = buffer
      .toString("utf8")
      .split("\n")
      .filter((l) => l.trim() !== "");
    return lines.slice(-linesMax);
  } finally {
    fs.closeSync(fd);
  }
}

export function serviceScript(repoRoot: string, service: ServiceName): string {
  return path.join(repoRoot, "services", service, "dist", "main.js");
}

/**
 * The monorepo root: the nearest ancestor of this file holding
 * pnpm-workspace.yaml (works from src/ under ts-jest and from dist/).
 */
export function findRepoRoot(start: string = __dirname): string {
  let dir = start;
  for (let depth = 0; depth < 16; depth++) {
    if (fs.existsSync(path.join(dir, "pnpm-workspace.yaml"))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`cannot find the repository root (pnpm-workspace.yaml) above ${start}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Children run in their own process groups, so nothing else kills them if the
// launcher dies; as a last resort, kill whatever is left when it exits.
const liveChildren = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of liveChildren) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
});
