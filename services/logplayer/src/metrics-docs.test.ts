// Every metric the LogPlayer registers is listed in docs/operations.md (an operator's reference).
import fs from "node:fs";
import path from "node:path";
import { Registry, silentLogger } from "@logplayer/common";
import type { Dispatcher } from "@logplayer/delivery";
import { RefusalLog } from "@logplayer/tls";
import { createPlayerMetrics } from "./player-metrics";

it("docs/operations.md lists every lp_ metric the LogPlayer registers", () => {
  const registry = new Registry();
  const dispatcher: Pick<Dispatcher, "targets" | "currentIndex"> = { targets: [], currentIndex: null };
  createPlayerMetrics(registry, dispatcher as Dispatcher);
  new RefusalLog("player", registry, silentLogger());
  const docs = fs.readFileSync(path.join(__dirname, "..", "..", "..", "docs", "operations.md"), "utf8");
  const names = registry.getMetricsAsArray().map((metric) => metric.name);
  expect(names.length).toBeGreaterThan(20);
  expect(names.filter((name) => !docs.includes(`\`${name}\``))).toEqual([]);
});
