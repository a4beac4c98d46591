// Package boundaries, checked on every `pnpm test`: the pure cores import no
// I/O, no gRPC and no service kit; library packages import no service; and no
// package reaches into another's files. The rules are data: a new package is
// covered by adding one row to PACKAGES, and a package directory without a row
// fails the test until someone decides what it is.
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";

const REPO_ROOT = path.resolve(__dirname, "../..");
const PACKAGE_PARENTS = ["packages", "services"] as const;

/**
 * - base: the dependency-free base; imports only its own files, no runtime dependencies.
 * - core: pure, I/O-free state machines and the codec; time, randomness and I/O are inputs.
 * - library: what services and users link (the client, the proto bindings): no service inside.
 * - kit: the service kit (@logplayer/common): gRPC, logging, metrics, CLI; no service inside.
 * - service, tool: processes and their harnesses (services, simulators, bench, chaos, test helpers).
 */
type Role = "base" | "core" | "library" | "kit" | "service" | "tool";

interface RoleRule {
  /** Import specifiers (package names; Node built-ins without `node:`) this role may not use. */
  forbidden: readonly string[];
  /** When true, the role may import nothing but its own files (relative paths). */
  relativeOnly: boolean;
}

const SERVICES = ["@logplayer/logstore", "@logplayer/logplayer", "@logplayer/shard"];
/** I/O, transport and process concerns: each is either I/O itself or the service kit's way to it. */
const IMPURE = [
  "@grpc/grpc-js",
  "grpc-health-check",
  "better-sqlite3",
  "fs",
  "net",
  "http",
  "http2",
  "child_process",
  "pino",
  "prom-client",
  "commander",
  // The service kit re-exports base, but importing it links grpc-js, pino, prom-client and commander.
  "@logplayer/common",
];

const ROLE_RULES: Readonly<Record<Role, RoleRule>> = {
  base: { forbidden: [...IMPURE, ...SERVICES], relativeOnly: true },
  core: { forbidden: [...IMPURE, ...SERVICES], relativeOnly: false },
  library: { forbidden: SERVICES, relativeOnly: false },
  kit: { forbidden: SERVICES, relativeOnly: false },
  service: { forbidden: [], relativeOnly: false },
  tool: { forbidden: [], relativeOnly: false },
};

interface FileRole {
  /** A path inside the package (a directory ending in `/`, or a file); the first match wins. */
  prefix: string;
  role: Role;
  why: string;
}

interface PackageRule {
  dir: string;
  /** Governs package.json dependencies, and every file no `files` entry matches. */
  role: Role;
  files?: readonly FileRole[];
  /** A row for a package another branch adds; its absence is not a stale row. */
  optional?: true;
}

const PACKAGES: readonly PackageRule[] = [
  { dir: "packages/base", role: "base" },
  { dir: "packages/delivery", role: "core" },
  { dir: "packages/raft", role: "core" },
  // The WAL's cores (record, recovery, group commit) are pure behind its SegmentFiles port; its Node
  // implementation of that port is the one file that may touch the file system.
  {
    dir: "packages/wal",
    role: "core",
    files: [
      { prefix: "src/node-segment-files.ts", role: "library", why: "the Node adapter of the SegmentFiles port: fs with O_DSYNC" },
      { prefix: "src/", role: "core", why: "group commit, range reads, truncation, recovery and framing over the port" },
    ],
  },
  {
    dir: "packages/proto",
    // package.json may depend on grpc-js: the bindings below need it.
    role: "library",
    files: [
      { prefix: "src/gen/", role: "library", why: "ts-proto's generated grpc-js stubs import grpc-js by design" },
      { prefix: "src/wire/services.ts", role: "library", why: "the grpc-js service definitions that plug the codec in" },
      { prefix: "src/index.ts", role: "library", why: "the entry point re-exports the bindings" },
      { prefix: "src/", role: "core", why: "the hand-written codec (src/wire) is pure: bytes in, messages out" },
    ],
  },
  { dir: "packages/client", role: "library" },
  { dir: "packages/common", role: "kit" },
  { dir: "packages/data-dir-lock", role: "kit" },
  { dir: "packages/tls", role: "kit" },
  { dir: "packages/testing", role: "tool" },
  { dir: "packages/sim", role: "tool" },
  { dir: "packages/bench", role: "tool" },
  { dir: "packages/chaos", role: "tool" },
  { dir: "packages/cluster", role: "tool" },
  { dir: "services/logstore", role: "service" },
  { dir: "services/logplayer", role: "service" },
  { dir: "services/shard", role: "service" },
  { dir: "services/console", role: "service" },
];

/** `node:fs/promises` -> `fs`, `@scope/name/deep` -> `@scope/name`, `name/deep` -> `name`. */
function packageNameOf(specifier: string): string {
  const bare = specifier.startsWith("node:") ? specifier.slice("node:".length) : specifier;
  const parts = bare.split("/");
  return bare.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

function roleOfFile(rule: PackageRule, fileInPackage: string): Role {
  return rule.files?.find((entry) => fileInPackage.startsWith(entry.prefix))?.role ?? rule.role;
}

/** The problems with one import of one file; `file` is relative to the repository root. */
function checkImport(rule: PackageRule, file: string, specifier: string): string[] {
  const role = roleOfFile(rule, path.relative(rule.dir, file));
  const where = `${file} (${role}) imports "${specifier}"`;
  if (specifier.startsWith(".")) {
    const target = path.relative(rule.dir, path.join(path.dirname(file), specifier));
    return target.startsWith("..") ? [`${where}: another package's files; import its entry point`] : [];
  }
  const problems: string[] = [];
  if (/^@logplayer\/[^/]+\/./.test(specifier)) problems.push(`${where}: a deep path; import the package's entry point`);
  if (ROLE_RULES[role].relativeOnly) problems.push(`${where}: a ${role} package imports only its own files`);
  else if (ROLE_RULES[role].forbidden.includes(packageNameOf(specifier))) problems.push(`${where}: forbidden for a ${role}`);
  return problems;
}

function checkManifest(rule: PackageRule, manifest: Record<string, unknown>): string[] {
  const runtime = ["dependencies", "optionalDependencies", "peerDependencies"].flatMap((field) =>
    Object.keys((manifest[field] ?? {}) as Record<string, string>),
  );
  const where = `${rule.dir}/package.json (${rule.role})`;
  if (ROLE_RULES[rule.role].relativeOnly) return runtime.map((name) => `${where} depends on ${name}: it may have no runtime dependencies`);
  return runtime
    .filter((name) => ROLE_RULES[rule.role].forbidden.includes(name))
    .map((name) => `${where} depends on ${name}: forbidden for a ${rule.role}`);
}

function sourceFiles(dir: string): string[] {
  const found: string[] = [];
  const pending = [dir];
  // Bounded: a source tree of more than this many directories is a symlink loop, not a package.
  for (let visited = 0; pending.length > 0; visited++) {
    if (visited > 10_000) throw new Error(`more than 10000 directories under ${dir}`);
    const current = pending.pop()!;
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory() && entry.name !== "node_modules" && entry.name !== "dist") pending.push(full);
      else if (entry.isFile() && entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") && !entry.name.endsWith(".d.ts")) {
        found.push(full);
      }
    }
  }
  return found.sort();
}

function importsOf(file: string): string[] {
  const info = ts.preProcessFile(fs.readFileSync(file, "utf8"), true, true);
  return info.importedFiles.map((imported) => imported.fileName);
}

function packageDirs(): string[] {
  return PACKAGE_PARENTS.flatMap((parent) =>
    fs
      .readdirSync(path.join(REPO_ROOT, parent), { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && fs.existsSync(path.join(REPO_ROOT, parent, entry.name, "package.json")))
      .map((entry) => `${parent}/${entry.name}`),
  );
}

describe("package boundaries", () => {
  const present = new Set(packageDirs());
  const rules = PACKAGES.filter((rule) => present.has(rule.dir));

  it("classifies every package, and every row names a package that exists", () => {
    const classified = new Set(PACKAGES.map((rule) => rule.dir));
    const unclassified = [...present].filter((dir) => !classified.has(dir));
    const stale = PACKAGES.filter((rule) => !present.has(rule.dir) && rule.optional !== true).map((rule) => rule.dir);
    expect({ unclassified, stale }).toEqual({ unclassified: [], stale: [] });
  });

  it("no package.json depends on what its role forbids", () => {
    const problems = rules.flatMap((rule) =>
      checkManifest(rule, JSON.parse(fs.readFileSync(path.join(REPO_ROOT, rule.dir, "package.json"), "utf8")) as Record<string, unknown>),
    );
    expect(problems).toEqual([]);
  });

  it("no source file imports what its role forbids, or another package's files", () => {
    let filesChecked = 0;
    const problems = rules.flatMap((rule) =>
      sourceFiles(path.join(REPO_ROOT, rule.dir, "src")).flatMap((absolute) => {
        filesChecked++;
        const file = path.relative(REPO_ROOT, absolute);
        return importsOf(absolute).flatMap((specifier) => checkImport(rule, file, specifier));
      }),
    );
    expect(problems).toEqual([]);
    // Guards against a walk that silently finds nothing (a moved src/, say).
    expect(filesChecked).toBeGreaterThan(100);
  });
});

describe("the rules themselves", () => {
  const rule = (dir: string): PackageRule => PACKAGES.find((row) => row.dir === dir)!;

  it.each([
    ["packages/raft", "packages/raft/src/raft-node.ts", "node:fs"],
    ["packages/raft", "packages/raft/src/raft-node.ts", "fs/promises"],
    ["packages/delivery", "packages/delivery/src/dispatcher.ts", "@grpc/grpc-js"],
    ["packages/delivery", "packages/delivery/src/dispatcher.ts", "@logplayer/common"],
    ["packages/proto", "packages/proto/src/wire/codec.ts", "@grpc/grpc-js"],
    ["packages/base", "packages/base/src/assert.ts", "@logplayer/proto"],
    ["packages/client", "packages/client/src/client.ts", "@logplayer/shard"],
    ["packages/common", "packages/common/src/grpc.ts", "@logplayer/logstore"],
    ["packages/sim", "packages/sim/src/raft-cluster.ts", "@logplayer/logstore/src/wal"],
    ["packages/sim", "packages/sim/src/raft-cluster.ts", "@logplayer/raft/dist/raft-node"],
    ["packages/sim", "packages/sim/src/raft-cluster.ts", "../../../services/logstore/src/wal"],
  ])("%s: %s may not import %s", (dir, file, specifier) => {
    expect(checkImport(rule(dir), file, specifier)).not.toEqual([]);
  });

  it.each([
    ["packages/proto", "packages/proto/src/gen/logplayer/v1/shard.ts", "@grpc/grpc-js"],
    ["packages/proto", "packages/proto/src/wire/services.ts", "@grpc/grpc-js"],
    ["packages/raft", "packages/raft/src/raft-node.ts", "@logplayer/base"],
    ["packages/raft", "packages/raft/src/raft-node.ts", "./raft-log"],
    ["packages/base", "packages/base/src/index.ts", "./assert"],
    ["packages/sim", "packages/sim/src/raft-cluster.ts", "@logplayer/logstore"],
    ["services/shard", "services/shard/src/store.ts", "better-sqlite3"],
  ])("%s: %s may import %s", (dir, file, specifier) => {
    expect(checkImport(rule(dir), file, specifier)).toEqual([]);
  });

  it("a core's package.json may not depend on the service kit, and base on anything", () => {
    expect(checkManifest(rule("packages/raft"), { dependencies: { "@logplayer/common": "workspace:*" } })).not.toEqual([]);
    expect(checkManifest(rule("packages/base"), { dependencies: { "left-pad": "1.0.0" } })).not.toEqual([]);
    expect(checkManifest(rule("packages/base"), { devDependencies: { typescript: "~5.7.2" } })).toEqual([]);
  });
});
