// Every metric the LogStore registers is listed in docs/operations.md (an operator's reference).
import fs from "node:fs";
import path from "node:path";
import { Registry, silentLogger } from "@logplayer/common";
import { RefusalLog } from "@logplayer/tls";
import { createLogStoreMetrics } from "./metrics";
import { createRaftMetrics } from "./raft-metrics";

it("docs/operations.md lists every lp_ metric the LogStore registers", () => {
  const registry = new Registry();
  createLogStoreMetrics(registry);
  const view = { role: "follower", term: 0n, leaderAddress: "", commitIndex: 0n, replicas: [], messagesRefused: 0 };
  createRaftMetrics(registry, "1", () => view).stop();
  new RefusalLog("logstore", registry, silentLogger());
  const docs = fs.readFileSync(path.join(__dirname, "..", "..", "..", "docs", "operations.md"), "utf8");
  const names = registry.getMetricsAsArray().map((metric) => metric.name);
  expect(names.length).toBeGreaterThan(15);
  expect(names.filter((name) => !docs.includes(`\`${name}\``))).toEqual([]);
});
