import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LocalCluster } from "@logplayer/cluster";

/** A fresh temp dir per cluster; removed when the test passes, kept (and printed) when it fails. */
export function tempDataDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lp-e2e-${name}-`));
}

export async function startTestCluster(name: string, options: { shardCount?: number; logPlayers?: number } = {}): Promise<LocalCluster> {
  return LocalCluster.start({
    dataDir: tempDataDir(name),
    shardCount: options.shardCount ?? 3,
    logPlayers: options.logPlayers ?? 1,
    ports: "auto",
    logLevel: "info",
  });
}
