// Stamps generated files with a header naming the command that makes them,
// and drops the version line ts-proto writes (it would differ between machines).
// biome-ignore lint/suspicious/noRedundantUseStrict: a CommonJS script, where strict mode is not implied.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..", "packages", "proto", "src", "gen");
const header = "// Generated from proto/ by `pnpm generate` (buf + ts-proto). Do not edit.\n";

function walk(dir) {
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (fs.statSync(file).isDirectory()) walk(file);
    else if (file.endsWith(".ts")) {
      const text = fs.readFileSync(file, "utf8").replace(/^\/\/\s+(protoc|protoc-gen-ts_proto)\s+v?.*\n/gm, "");
      fs.writeFileSync(file, text.startsWith(header) ? text : header + text);
    }
  }
}
walk(root);
