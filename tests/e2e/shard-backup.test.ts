// Back up a shard under an APPEND workload (lpctl backup shard, the online
// Backup RPC), stop it, delete its database, restore the backup (lpctl
// restore shard) and restart it: the LogPlayer replays the rest from the
// backup's LSN, and every acknowledged token is applied exactly once, in
// order, on every key, the restored shard's included.
import fs from "node:fs";
import path from "node:path";
import type { LocalCluster } from "@logplayer/cluster";
import { type LogPlayerClient, runLpctl } from "@logplayer/client";
import { parseBackupManifest } from "@logplayer/common";
import { startTestCluster, tempDataDir } from "./harness";
import { checkAppendWorkload, keyNames, runAppendWorkload, type WorkloadResult } from "./workload";

const RESTORED_SHARD = 1;

async function lpctl(cluster: LocalCluster, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io = {
    stdout: (text: string) => {
      stdout += text;
    },
    stderr: (text: string) => {
      stderr += text;
    },
  };
  const globals = ["--shards", cluster.endpoints.shards.join(","), "--logstore", cluster.endpoints.logstores.join(",")];
  const code = await runLpctl([...globals, "--tls-dir", cluster.tlsDir, ...args], io);
  return { code, stdout, stderr };
}

describe("shard backup and restore under load", () => {
  let cluster: LocalCluster;
  let client: LogPlayerClient;

  beforeAll(async () => {
    cluster = await startTestCluster("backup");
    client = await cluster.connectClient({ timeoutMs: 10_000 });
  });
  afterAll(async () => {
    client?.close();
    await cluster?.stop();
  });

  it("a restored shard resumes from the backup's LSN and applies every APPEND token exactly once", async () => {
    const keys = keyNames(30, "backup-");
    const backupDir = tempDataDir("backups");
    let backup: Promise<{ code: number; stdout: string; stderr: string }> | undefined;
    const first = await runAppendWorkload(client, {
      keys,
      keysPerTxn: 3,
      concurrency: 6,
      txnsMax: 500,
      seed: 31,
      tokenPrefix: "b1.",
      onAck: (acked) => {
        // Under load: the workload keeps committing while the shard copies itself.
        if (acked === 150) backup = lpctl(cluster, ["--json", "backup", "shard", String(RESTORED_SHARD), "--to", backupDir]);
      },
    });
    expect(backup).toBeDefined();
    const backedUp = await backup!;
    expect(backedUp.stderr).toBe("");
    expect(backedUp.code).toBe(0);
    const { file } = JSON.parse(backedUp.stdout) as { file: string };
    const manifest = parseBackupManifest(fs.readFileSync(file.replace(/\.sqlite$/, ".json"), "utf8"), file);
    expect(path.basename(file)).toBe(`shard-${RESTORED_SHARD}-lsn-${manifest.appliedLsn}.sqlite`);
    const lastAcked = first.acked.reduce((max, t) => (t.lsn > max ? t.lsn : max), 0n);
    // Something was applied before the copy, and the log holds more after it: the restore must replay.
    expect(manifest.appliedLsn).toBeGreaterThan(0n);
    expect(manifest.appliedLsn).toBeLessThan(lastAcked);

    // Every token is applied on the shard before it stops: the restore then rolls it back to the backup.
    expect((await checkAppendWorkload(client, keys, first)).violations).toEqual([]);
    const name = `shard-${RESTORED_SHARD}`;
    const dataDir = cluster.process(name).spec.dataDir!;
    cluster.kill(name, "SIGTERM");
    await cluster.process(name).exited;
    for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(path.join(dataDir, `shard.sqlite${suffix}`), { force: true });
    const restored = await lpctl(cluster, ["restore", "shard", String(RESTORED_SHARD), "--from", file, "--data-dir", dataDir]);
    expect(restored.stderr).toBe("");
    expect(restored.code).toBe(0);
    expect(restored.stdout).toContain(`restored shard ${RESTORED_SHARD} at lsn=${manifest.appliedLsn}`);
    await cluster.restart(name);

    const second = await runAppendWorkload(client, { keys, keysPerTxn: 3, concurrency: 6, txnsMax: 200, seed: 32, tokenPrefix: "b2." });
    const all: WorkloadResult = { acked: [...first.acked, ...second.acked], unknown: [...first.unknown, ...second.unknown] };
    const check = await checkAppendWorkload(client, keys, all);
    expect(check.violations).toEqual([]);
    expect(check.tokensChecked).toBeGreaterThanOrEqual(all.acked.length * 3);
  });
});
