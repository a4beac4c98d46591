// One jest run covers unit tests beside the code (*.test.ts under src/) and
// end-to-end tests with real processes (tests/). Workspace packages resolve to
// their built dist/, so `pnpm test` builds first.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "<rootDir>/tsconfig.test.json" }] },
  testMatch: ["<rootDir>/{packages,services}/*/src/**/*.test.ts", "<rootDir>/tests/**/*.test.ts"],
  testPathIgnorePatterns: ["/node_modules/", "/dist/"],
  maxWorkers: 2,
  testTimeout: 120_000,
  verbose: false,
};
