// Every metric the shard registers is listed in docs/operations.md (an operator's reference).
import fs from "node:fs";
import path from "node:path";
import { Registry, silentLogger } from "@logplayer/common";
import { RefusalLog } from "@logplayer/tls";
import { createShardMetrics } from "./shard-metrics";

it("docs/operations.md lists every lp_ metric the shard registers", () => {
  const registry = new Registry();
  createShardMetrics(registry);
  new RefusalLog("shard", registry, silentLogger());
  const docs = fs.readFileSync(path.join(__dirname, "..", "..", "..", "docs", "operations.md"), "utf8");
  const names = registry.getMetricsAsArray().map((metric) => metric.name);
  expect(names.length).toBeGreaterThan(10);
  expect(names.filter((name) => !docs.includes(`\`${name}\``))).toEqual([]);
});
