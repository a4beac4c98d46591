// Two jest projects, selected by path (test files keep their names):
//   unit:    pure tests (files and in-memory fakes at most): no child process, no socket.
//   process: tests that start real processes or servers on loopback.
// `pnpm test` runs both in one jest run (so --json counts cover everything);
// `pnpm test:unit` / `pnpm test:process` run one. Workspace packages resolve to
// their built dist/, so every script builds first. tests/jest-projects.test.ts
// fails if a test file falls in neither project or in both.
const root = __dirname;
// A glob relative to the root ("*": within one path segment, "**/": any directories) as an anchored regex source.
function pattern(glob) {
  const escapeRegex = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  let source = "";
  for (let position = 0; position < glob.length; position++) {
    if (glob.startsWith("**/", position)) {
      source += "(?:.*/)?";
      position += 2;
    } else if (glob[position] === "*") {
      source += "[^/]*";
    } else {
      source += escapeRegex(glob[position]);
    }
  }
  return `^${escapeRegex(root)}/${source}$`;
}

/** Every test file lives here; anything else named *.test.ts is an error (see tests/jest-projects.test.ts). */
const TEST_FILES = ["packages/*/src/**/*.test.ts", "services/*/src/**/*.test.ts", "tests/**/*.test.ts"];

/** Tests that spawn a process, bind a server or connect a socket. Keep in sync when adding one. */
const PROCESS_TEST_FILES = [
  "**/*.process.test.ts",
  "tests/e2e/**/*.test.ts",
  "tests/chaos/**/*.test.ts",
  "tests/model/**/*.test.ts",
  "services/shard/src/shard-process.test.ts",
  "services/logstore/src/single-replica-dedupe.test.ts",
  "services/logstore/src/snapshot-restart.test.ts",
  "services/logplayer/src/logplayer.adapter.test.ts",
  "packages/chaos/src/source-router.test.ts",
  "packages/chaos/src/tcp-proxy.test.ts",
  "packages/client/src/client.test.ts",
  "packages/client/src/lpctl.test.ts",
  "packages/client/src/real-services.test.ts",
  "packages/cluster/src/cluster.test.ts",
  "packages/cluster/src/process.test.ts",
  "packages/data-dir-lock/src/data-dir-lock.test.ts",
  "packages/tls/src/tls.test.ts",
  "packages/sim/src/delivery-faults.test.ts",
  "packages/sim/src/raft-faults.test.ts",
];

const IGNORED = ["/node_modules/", "/dist/"];

const shared = {
  testEnvironment: "node",
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "<rootDir>/tsconfig.test.json" }] },
  rootDir: root,
};

const projects = [
  {
    ...shared,
    displayName: "unit",
    testRegex: TEST_FILES.map(pattern),
    testPathIgnorePatterns: [...IGNORED, ...PROCESS_TEST_FILES.map(pattern)],
  },
  {
    ...shared,
    displayName: "process",
    testRegex: PROCESS_TEST_FILES.map(pattern),
    testPathIgnorePatterns: IGNORED,
  },
];

/** @type {import('jest').Config} */
module.exports = {
  projects,
  maxWorkers: 2,
  testTimeout: 120_000,
  verbose: false,
};

// For tests/jest-projects.test.ts: which projects select an absolute path, by jest's own rule
// (a testRegex matches and no testPathIgnorePatterns does).
Object.defineProperty(module.exports, "processTestFiles", { enumerable: false, value: PROCESS_TEST_FILES });
Object.defineProperty(module.exports, "projectsSelecting", {
  enumerable: false,
  value: (file) =>
    projects
      .filter((project) => project.testRegex.some((source) => new RegExp(source).test(file)))
      .filter((project) => !project.testPathIgnorePatterns.some((source) => new RegExp(source).test(file)))
      .map((project) => project.displayName),
});
