// The jest projects (jest.config.js) select test files by path. This test keeps
// that honest: every test file in the repository runs in exactly one project,
// every path named in the process list exists, and no unit test starts a
// process or opens a socket (by the calls it would need to).
import fs from "node:fs";
import path from "node:path";

interface JestProjects {
  projectsSelecting(file: string): string[];
  processTestFiles: readonly string[];
}

const repoRoot = path.resolve(__dirname, "..");
// The config is CommonJS JavaScript: require() reads it as jest does.
const config = require(path.join(repoRoot, "jest.config.js")) as JestProjects;

/** Directories never searched: dependencies, build output, caches. */
const SKIPPED_DIRS = new Set(["node_modules", "dist", ".git", ".turbo", "coverage"]);
const TEST_FILE = /\.(test|spec)\.[cm]?[jt]sx?$/;
/** Calls a unit test must not make: each starts a process or opens a socket. */
const PROCESS_OR_SOCKET_CALLS = [
  "child_process",
  "spawn",
  "spawnSync",
  "fork",
  "execFile",
  "bindAsync",
  "bindServer",
  "createServer",
  "startFakeCluster",
  "startLogStore",
  "startShard",
  "startLogPlayer",
];
/** Unit tests that name those modules only as data (a list of forbidden imports), never calling them. */
const NAMES_THEM_AS_DATA = new Set(["tests/architecture/imports.test.ts"]);
const PROCESS_OR_SOCKET = new RegExp(`\\b(${PROCESS_OR_SOCKET_CALLS.join("|")})\\b|\\.listen\\(`);
/** Directories walked, bounded so a runaway tree fails instead of hanging. */
const DIRS_MAX = 10_000;

function testFiles(): string[] {
  const found: string[] = [];
  const pending = [repoRoot];
  for (let visited = 0; pending.length > 0; visited++) {
    if (visited >= DIRS_MAX) throw new Error(`more than ${DIRS_MAX} directories under ${repoRoot}`);
    const dir = pending.pop() as string;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && !SKIPPED_DIRS.has(entry.name)) pending.push(full);
      else if (entry.isFile() && TEST_FILE.test(entry.name)) found.push(full);
    }
  }
  return found.sort();
}

const files = testFiles();
const relative = (file: string): string => path.relative(repoRoot, file);

test("finds the test files (the walk works)", () => {
  expect(files.length).toBeGreaterThan(20);
  expect(files.map(relative)).toContain("tests/jest-projects.test.ts");
});

test("every test file runs in exactly one jest project", () => {
  const misplaced = files
    .map((file) => ({ file: relative(file), projects: config.projectsSelecting(file) }))
    .filter((entry) => entry.projects.length !== 1)
    .map((entry) => `${entry.file}: ${entry.projects.length === 0 ? "in no project" : `in ${entry.projects.join(" and ")}`}`);
  expect(misplaced).toEqual([]);
});

test("the rule itself rejects a test file outside the known places", () => {
  expect(config.projectsSelecting(path.join(repoRoot, "scripts", "stray.test.ts"))).toEqual([]);
  expect(config.projectsSelecting(path.join(repoRoot, "packages", "raft", "src", "raft-node.test.ts"))).toEqual(["unit"]);
  expect(config.projectsSelecting(path.join(repoRoot, "tests", "e2e", "pipeline.test.ts"))).toEqual(["process"]);
});

test("every exact path in the process list exists (a renamed file would silently become a unit test)", () => {
  const missing = config.processTestFiles.filter((glob) => !glob.includes("*") && !fs.existsSync(path.join(repoRoot, glob)));
  expect(missing).toEqual([]);
});

test("no unit test starts a process or opens a socket", () => {
  const offenders = files
    .filter((file) => config.projectsSelecting(file).includes("unit") && file !== __filename)
    .filter((file) => !NAMES_THEM_AS_DATA.has(relative(file)) && PROCESS_OR_SOCKET.test(fs.readFileSync(file, "utf8")))
    .map(relative);
  expect(offenders).toEqual([]);
});
