import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { freePorts, Status } from "@logplayer/common";
import { waitFor } from "@logplayer/testing";
import {
  LogStoreClient,
  LookupAppendState,
  MutationKind,
  type AppendRequest,
  type AppendResponse,
  type LookupAppendRequest,
  type LookupAppendResponse,
  type RegisterClientRequest,
  type RegisterClientResponse,
  type StatusResponse,
} from "@logplayer/proto";

// Issue scenario 3 against a real LogStore process (dist/main.js; build first): a client's dedupe state is pushed
// out by other clients (or expires by age), and its retry must be refused with SESSION_EXPIRED, never appended again.
const MAIN = path.join(__dirname, "..", "dist", "main.js");
const WAIT_MS = 15_000;
const CLIENTS_MAX = 8;

interface Running {
  readonly child: ChildProcess;
  readonly client: LogStoreClient;
  readonly metricsPort: number;
}

const children = new Set<ChildProcess>();
const clients = new Set<LogStoreClient>();
let dataDir: string;

beforeEach(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "logstore-sessions-"));
});

afterEach(async () => {
  for (const client of clients) client.close();
  clients.clear();
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await Promise.all([...children].map((child) => exited(child)));
  children.clear();
  await fs.rm(dataDir, { recursive: true, force: true });
});

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Starts a LogStore (one voter on a free port unless told otherwise) and waits for its ready line. */
async function start(
  extraArgs: string[],
  where: { dataDir: string; listen: string } = { dataDir, listen: "127.0.0.1:0" },
): Promise<Running> {
  const args = [
    "--data-dir",
    where.dataDir,
    "--listen",
    where.listen,
    "--metrics-port",
    "0",
    "--shard-count",
    "1",
    "--cluster-id",
    "sessions",
    // Plain text: this file drives the LogStore's own protocol with raw clients; mTLS and roles are tested in
    // tests/e2e/security.process.test.ts.
    "--insecure",
  ];
  const child = spawn(process.execPath, [MAIN, ...args, ...extraArgs], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const ports = await new Promise<{ grpc: number; metrics: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line: ${stderr}`)), WAIT_MS);
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
      const ready = stdout
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => line["msg"] === "ready");
      if (ready === undefined) return;
      clearTimeout(timer);
      resolve({ grpc: ready["grpcPort"] as number, metrics: ready["metricsPort"] as number });
    });
    child.once("exit", (code) => reject(new Error(`exited ${code} before ready: ${stderr}`)));
  });
  const client = new LogStoreClient(`127.0.0.1:${ports.grpc}`, credentials.createInsecure());
  clients.add(client);
  return { child, client, metricsPort: ports.metrics };
}

async function restart(running: Running, extraArgs: string[]): Promise<Running> {
  running.client.close();
  running.child.kill("SIGKILL");
  await exited(running.child);
  return start(extraArgs);
}

function unary<Req, Res>(
  call: (
    request: Req,
    metadata: Metadata,
    options: { deadline: number },
    callback: (err: ServiceError | null, res?: Res) => void,
  ) => unknown,
  request: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    call(request, new Metadata(), { deadline: Date.now() + WAIT_MS }, (err, response) => (err ? reject(err) : resolve(response!)));
  });
}

const append = (r: Running, request: AppendRequest): Promise<AppendResponse> => unary((...a) => r.client.append(...a), request);
const status = (r: Running): Promise<StatusResponse> => unary((...a) => r.client.status(...a), {});
const register = async (r: Running, clientId: string): Promise<bigint> =>
  (await unary<RegisterClientRequest, RegisterClientResponse>((...a) => r.client.registerClient(...a), { clientId })).sessionLsn;
const lookup = (r: Running, request: LookupAppendRequest): Promise<LookupAppendResponse> =>
  unary((...a) => r.client.lookupAppend(...a), request);

function request(clientId: string, clientSeq: bigint, sessionLsn = 0n): AppendRequest {
  const key = `${clientId}-${clientSeq}`;
  return {
    txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_APPEND, key, value: Buffer.from("x;"), delta: 0n }] },
    commitTimeNs: 0n,
    clientId,
    clientSeq,
    sessionLsn,
  };
}

/** `count` other clients append once each, without registering: enough of them push every older session out. */
async function otherClientsAppend(r: Running, count: number, prefix: string): Promise<void> {
  for (let i = 0; i < count; i++) await append(r, request(`${prefix}-${i}`, 1n));
}

/** The refusal a retry gets; fails the test when the retry is accepted instead. */
async function refusal(r: Running, retry: AppendRequest): Promise<ServiceError> {
  const outcome = await append(r, retry).then(
    (response) => ({ accepted: response }),
    (err: ServiceError) => ({ refused: err }),
  );
  if ("accepted" in outcome) throw new Error(`retry accepted at LSN ${outcome.accepted.lsn} (duplicate: ${outcome.accepted.duplicate})`);
  return outcome.refused;
}

function expectSessionExpired(error: ServiceError): void {
  expect(error.code).toBe(Status.FAILED_PRECONDITION);
  expect(error.metadata.get("lp-error-reason")).toEqual(["SESSION_EXPIRED"]);
  expect(error.details).toMatch(/unknown/);
}

describe("client sessions that expire safely (scenario 3)", () => {
  it("without registration: after other clients evict A, A's retries of seq 1 and 2 are refused with SESSION_EXPIRED and nothing is appended", async () => {
    const store = await start(["--dedupe-clients-max", String(CLIENTS_MAX)]);
    await append(store, request("A", 1n));
    const original = await append(store, request("A", 2n));
    expect(await append(store, request("A", 2n))).toEqual({ lsn: original.lsn, duplicate: true });
    await otherClientsAppend(store, CLIENTS_MAX, "other");
    const before = await status(store);
    expectSessionExpired(await refusal(store, request("A", 2n)));
    // The raw retry of seq 1 (session_lsn 0) is no new first append either: A's session ended.
    expectSessionExpired(await refusal(store, request("A", 1n)));
    const after = await status(store);
    expect(after.lastLsn).toBe(before.lastLsn);
    const metrics = await (await fetch(`http://127.0.0.1:${store.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^lp_logstore_appends_total\{[^}]*outcome="SESSION_EXPIRED"[^}]*\} 2$/m);
    expect(metrics).toMatch(/^lp_logstore_dedupe_sessions_ended_total\{[^}]*cause="evicted"[^}]*\} 1$/m);
    expect(metrics).toMatch(/^lp_logstore_dedupe_sessions\{[^}]*\} 8$/m);
  });

  it("registered: A's retry of seq 1 after eviction is refused, also after a restart; LookupAppend finds the original", async () => {
    const flags = ["--dedupe-clients-max", String(CLIENTS_MAX)];
    let store = await start(flags);
    const session = await register(store, "A");
    const original = await append(store, request("A", 1n, session));
    const live = await register(store, "B");
    await append(store, request("B", 1n, live));
    await otherClientsAppend(store, CLIENTS_MAX, "other");
    const lastLsn = (await status(store)).lastLsn;
    expectSessionExpired(await refusal(store, request("A", 1n, session)));
    expectSessionExpired(await refusal(store, request("A", 2n, session)));
    expect((await status(store)).lastLsn).toBe(lastLsn);
    const found = await lookup(store, { clientId: "A", clientSeq: 1n, sessionLsn: session, fromLsn: session });
    expect(found).toMatchObject({ state: LookupAppendState.LOOKUP_APPEND_STATE_COMMITTED, lsn: original.lsn });
    const never = await lookup(store, { clientId: "A", clientSeq: 2n, sessionLsn: session, fromLsn: session });
    expect(never.state).toBe(LookupAppendState.LOOKUP_APPEND_STATE_NOT_APPENDED);
    // A search that starts after the session's first possible append cannot say "not appended".
    const late = await lookup(store, { clientId: "A", clientSeq: 2n, sessionLsn: session, fromLsn: original.lsn + 1n });
    expect(late).toMatchObject({ state: LookupAppendState.LOOKUP_APPEND_STATE_UNKNOWN, detail: expect.stringMatching(/give from_lsn/) });

    // A restart rebuilds the table from the log: the same verdicts (the restart's no-op ages sessions by one entry only).
    store = await restart(store, flags);
    expectSessionExpired(await refusal(store, request("A", 1n, session)));
    const restartedLastLsn = (await status(store)).lastLsn;
    const reopened = await register(store, "A");
    expect(reopened).toBe(restartedLastLsn + 1n);
    expect(await append(store, request("A", 2n, reopened))).toEqual({ lsn: reopened + 1n, duplicate: false });
    expectSessionExpired(await refusal(store, request("A", 1n, session)));
  });

  it("expires a session idle for more than --dedupe-session-idle-entries-max log entries", async () => {
    const store = await start(["--dedupe-session-idle-entries-max", "5"]);
    const session = await register(store, "A");
    const original = await append(store, request("A", 1n, session));
    for (let i = 0; i < 4; i++) await append(store, request("", 0n));
    expect(await append(store, request("A", 1n, session))).toEqual({ lsn: original.lsn, duplicate: true });
    // The duplicate answer appended nothing, so A was last used at the original's LSN.
    for (let i = 0; i < 2; i++) await append(store, request("", 0n));
    const lastLsn = (await status(store)).lastLsn;
    expectSessionExpired(await refusal(store, request("A", 1n, session)));
    expect((await status(store)).lastLsn).toBe(lastLsn);
  });

  it("three replicas: a session survives a leader change, and once other clients evict it the new leader refuses its retry", async () => {
    const ports = await freePorts(3);
    const peers = ports.map((port, i) => `${i + 1}=127.0.0.1:${port}`).join(",");
    const flags = (id: number): string[] => ["--replica-id", String(id), "--peers", peers, "--dedupe-clients-max", String(CLIENTS_MAX)];
    const replicas = await Promise.all(
      ports.map((port, i) => start(flags(i + 1), { dataDir: path.join(dataDir, `replica-${i + 1}`), listen: `127.0.0.1:${port}` })),
    );
    const leaderAmong = async (among: readonly Running[]): Promise<Running | undefined> => {
      for (const replica of among) {
        const answer = await status(replica).catch(() => undefined);
        if (answer?.role === "leader") return replica;
      }
      return undefined;
    };
    const waitForLeader = async (among: readonly Running[], description: string): Promise<Running> => {
      let found: Running | undefined;
      const check = async (): Promise<boolean> => {
        found = await leaderAmong(among);
        return found !== undefined;
      };
      await waitFor(description, check, { timeoutMs: 30_000 });
      return found!;
    };
    const leader = await waitForLeader(replicas, "a leader");
    const session = await register(leader, "A");
    const original = await append(leader, request("A", 1n, session));

    leader.child.kill("SIGKILL");
    await exited(leader.child);
    const survivors = replicas.filter((r) => r !== leader);
    const next = await waitForLeader(survivors, "a new leader");
    // The new leader rebuilt nothing: it applied the same entries as a follower, so it holds A's session.
    expect(await append(next, request("A", 1n, session))).toEqual({ lsn: original.lsn, duplicate: true });
    await otherClientsAppend(next, CLIENTS_MAX, "other");
    const lastLsn = (await status(next)).lastLsn;
    expectSessionExpired(await refusal(next, request("A", 1n, session)));
    expect((await status(next)).lastLsn).toBe(lastLsn);
  }, 120_000);
});
