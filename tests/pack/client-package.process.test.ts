/*
 * The client as people install it: `pnpm pack` of @logplayer/client and the workspace packages it needs at run
 * time, `npm install` of those tarballs into a scratch project in a temp dir outside the workspace (offline
 * from npm's cache when it holds the third-party packages, else from the registry), then the README's example,
 * type-checked against the installed types and run against a live local cluster. Proves each tarball is
 * self-sufficient: no workspace: range, no file outside `files`, ESM and CommonJS entry points, the lpctl bin.
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LocalCluster } from "@logplayer/cluster";

const ROOT = path.resolve(__dirname, "../..");
/** The client and what it needs at run time, in dependency order. */
const PUBLISHED = ["base", "proto", "common", "tls", "client"];
const TSC = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
const COMMAND_TIMEOUT_MS = 240_000;

const transcript: string[] = [];

/** Runs a command; recorded in the transcript (LP_PACK_TRANSCRIPT) unless it only inspects a tarball. */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}, record = true): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    timeout: COMMAND_TIMEOUT_MS,
    env: { ...process.env, ...env },
  });
  if (record)
    transcript.push(
      `$ (cd ${cwd} && ${command} ${args.join(" ")})`,
      `${result.stdout}${result.stderr}`.trimEnd(),
      `[exit ${result.status}]`,
      "",
    );
  return result;
}

function expectSuccess(result: SpawnSyncReturns<string>): string {
  if (result.status !== 0) throw new Error(`exit ${result.status} (${String(result.error ?? "")}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** The first ```ts block of the client's README, pointed at `cluster` instead of the default local ports. */
function readmeExample(cluster: LocalCluster): string {
  const readme = fs.readFileSync(path.join(ROOT, "packages", "client", "README.md"), "utf8");
  const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (example === undefined) throw new Error("the client README has no ```ts example");
  const list = (addresses: readonly string[]): string => `[${addresses.map((a) => JSON.stringify(a)).join(", ")}]`;
  const pointed = example
    .replace(/logstore: \[[^\]]*\]/, `logstore: ${list(cluster.endpoints.logstores)}`)
    .replace(/shards: \[[^\]]*\]/, `shards: ${list(cluster.endpoints.shards)}`);
  expect(pointed).not.toContain(":7100");
  expect(pointed).not.toContain(":7300");
  return pointed;
}

describe("the published client package", () => {
  let dir = "";
  let cluster: LocalCluster | undefined;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lp-client-pack-"));
  });

  afterAll(async () => {
    await cluster?.stop();
    const file = process.env["LP_PACK_TRANSCRIPT"];
    if (file !== undefined && file !== "") fs.writeFileSync(file, `${transcript.join("\n")}\n`);
    if (dir !== "") fs.rmSync(dir, { recursive: true, force: true });
    if (cluster !== undefined) fs.rmSync(cluster.dataDir, { recursive: true, force: true });
  });

  it("packs, installs outside the workspace and runs the README example against a live cluster", async () => {
    expect(path.relative(ROOT, dir).startsWith("..")).toBe(true);
    const tarballs: string[] = [];
    for (const name of PUBLISHED) {
      const packageDir = path.join(ROOT, "packages", name);
      expect(fs.existsSync(path.join(packageDir, "dist", "index.mjs"))).toBe(true);
      expectSuccess(run("pnpm", ["pack", "--pack-destination", dir], packageDir));
      const tarball = path.join(dir, `logplayer-${name}-0.1.0.tgz`);
      const manifest = expectSuccess(run("tar", ["-xOzf", tarball, "package/package.json"], dir, {}, false));
      expect(manifest).not.toContain("workspace:");
      expect(JSON.parse(manifest)).toMatchObject({ private: false, license: "Apache-2.0" });
      const files = expectSuccess(run("tar", ["-tzf", tarball], dir, {}, false)).split("\n");
      expect(files).toEqual(expect.arrayContaining(["package/LICENSE", "package/dist/index.js", "package/dist/index.mjs"]));
      expect(files.filter((file) => /\.test\.|fixture|\/src\//.test(file))).toEqual([]);
      tarballs.push(tarball);
    }

    const scratch = path.join(dir, "scratch");
    fs.mkdirSync(scratch);
    fs.writeFileSync(path.join(scratch, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }, null, 2));
    const install = ["install", "--no-audit", "--no-fund", ...tarballs];
    // Offline when npm's cache holds @grpc/grpc-js and the rest; else they come from the registry (only they can).
    const offline = run("npm", [...install, "--offline"], scratch);
    if (offline.status !== 0) expectSuccess(run("npm", [...install, "--prefer-offline"], scratch));
    const installed = fs.readdirSync(path.join(scratch, "node_modules", "@logplayer")).sort();
    expect(installed).toEqual([...PUBLISHED].sort());
    // Nothing resolves back into the workspace.
    expect(fs.realpathSync(path.join(scratch, "node_modules", "@logplayer", "client")).startsWith(scratch)).toBe(true);

    expect(expectSuccess(run(path.join(scratch, "node_modules", ".bin", "lpctl"), ["--version"], scratch))).toMatch(
      /^lpctl 0\.1\.0 \(protocol version \d+\)\n$/,
    );
    const cjs = "const c = require('@logplayer/client'); console.log(typeof c.LogPlayerClient, typeof c.mutation.put)";
    expect(expectSuccess(run(process.execPath, ["-e", cjs], scratch))).toBe("function function\n");

    cluster = await LocalCluster.start({
      dataDir: fs.mkdtempSync(path.join(os.tmpdir(), "lp-client-pack-cluster-")),
      shardCount: 3,
      logStoreReplicas: 3,
      logPlayers: 1,
      ports: "auto",
      logLevel: "info",
    });
    fs.writeFileSync(path.join(scratch, "example.ts"), readmeExample(cluster));
    const compile = ["--strict", "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext"];
    const types = ["--types", "node", "--typeRoots", path.join(ROOT, "node_modules", "@types")];
    expectSuccess(run(process.execPath, [TSC, ...compile, ...types, "example.ts"], scratch));
    const output = expectSuccess(run(process.execPath, ["example.js"], scratch, { LP_TLS_DIR: cluster.tlsDir }));
    expect(output).toMatch(/^Ada at applied LSN \d+n\n/);
    expect(output).toContain("user:42:name Ada\n");
  }, 600_000);
});
