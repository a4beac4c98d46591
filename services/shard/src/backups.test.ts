import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  backupTempFile,
  DEFAULT_TRANSACTION_LIMITS,
  installRestoredDatabase,
  listBackups,
  LpError,
  silentLogger,
  Status,
} from "@logplayer/common";
import { MutationKind, type Part } from "@logplayer/proto";
import { ShardBackups } from "./backups";
import { DATABASE_FILE_NAME, ShardStore } from "./store";

const MAP = { shardCount: 1, hash: "fnv1a32" };

function appendPart(lsn: number, token: string): Part {
  const mutation = { kind: MutationKind.MUTATION_KIND_APPEND, key: `k${lsn % 7}`, value: Buffer.from(`${token},`), delta: 0n };
  return { lsn: BigInt(lsn), prevLsn: BigInt(lsn - 1), mutations: [mutation], commitTimeNs: 0n, dispatchTimeNs: 0n };
}

/** Every APPEND token in the store's values, in key order. */
function tokens(store: ShardStore): string[] {
  return store
    .scan("", "", 1000, 1 << 30)
    .items.flatMap((item) => item.value.toString("utf8").split(",").filter(Boolean))
    .sort();
}

describe("ShardBackups", () => {
  let dir: string;
  const stores: ShardStore[] = [];
  const open = (dataDir: string): ShardStore => {
    const store = ShardStore.open(dataDir, 0);
    stores.push(store);
    return store;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "shard-backups-"));
  });
  afterEach(() => {
    for (const store of stores.splice(0)) store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("a copy taken while batches apply is consistent: its data is exactly the log up to its applied LSN", async () => {
    const store = open(path.join(dir, "data"));
    store.adoptIdentity({ clusterId: "c1", shardMap: MAP, limits: DEFAULT_TRANSACTION_LIMITS });
    // Enough rows that the copy takes many 1-page steps, with applies between them.
    let lsn = 0;
    for (; lsn < 300; lsn++) store.applyBatch([appendPart(lsn + 1, `t${lsn + 1}-${"x".repeat(400)}`)]);
    const backups = new ShardBackups(
      store,
      { backupDir: path.join(dir, "backups"), intervalMs: null, keep: 2, stepPages: 1 },
      silentLogger(),
    );
    const copying = backups.backupToDir();
    const applying = (async () => {
      for (let i = 0; i < 50; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        lsn += 1;
        store.applyBatch([appendPart(lsn, `t${lsn}`)]);
      }
    })();
    const [installed] = await Promise.all([copying, applying]);
    expect(installed).not.toBeNull();
    const { manifest, databaseFile } = installed!;
    expect(manifest).toMatchObject({ clusterId: "c1", shardId: 0, shardMap: MAP });
    expect(manifest.appliedLsn).toBeGreaterThanOrEqual(300n);
    expect(backups.newest?.manifest.appliedLsn).toBe(manifest.appliedLsn);

    const restoredDir = path.join(dir, "restored");
    await installRestoredDatabase(databaseFile, path.join(restoredDir, DATABASE_FILE_NAME), { shardId: 0, clusterId: "c1" });
    const restored = open(restoredDir);
    expect(restored.appliedLsn).toBe(manifest.appliedLsn);
    const expected = Array.from({ length: Number(manifest.appliedLsn) }, (_, i) => `t${i + 1}`);
    expect(tokens(restored).map((token) => token.split("-")[0])).toEqual(expected.sort());
  });

  test("periodic backups skip an unchanged shard, keep the newest --backup-keep, and are found again after a restart", async () => {
    const backupDir = path.join(dir, "backups");
    const store = open(path.join(dir, "data"));
    store.adoptIdentity({ clusterId: "c1", shardMap: MAP, limits: DEFAULT_TRANSACTION_LIMITS });
    const options = { backupDir, intervalMs: null, keep: 2, stepPages: 64 };
    const backups = new ShardBackups(store, options, silentLogger());
    expect(backups.newest).toBeNull();
    for (let lsn = 1; lsn <= 3; lsn++) {
      store.applyBatch([appendPart(lsn, `t${lsn}`)]);
      expect(await backups.backupToDir()).not.toBeNull();
    }
    expect(await backups.backupToDir()).toBeNull();
    expect(listBackups(backupDir, 0).map((b) => b.manifest.appliedLsn)).toEqual([2n, 3n]);
    // A crash mid-backup leaves a temp file; the next start removes it, but not one a live process (pid 1) is writing.
    fs.writeFileSync(backupTempFile(backupDir, "backup"), "partial");
    fs.writeFileSync(path.join(backupDir, ".lpctl-backup-1-0123abcd.tmp"), "in flight");
    const again = new ShardBackups(store, options, silentLogger());
    expect(again.newest?.manifest.appliedLsn).toBe(3n);
    expect(fs.readdirSync(backupDir).filter((name) => name.endsWith(".tmp"))).toEqual([".lpctl-backup-1-0123abcd.tmp"]);
  });

  test("a second copy while one runs is refused with RESOURCE_EXHAUSTED", async () => {
    const store = open(path.join(dir, "data"));
    store.adoptIdentity({ clusterId: "c1", shardMap: MAP, limits: DEFAULT_TRANSACTION_LIMITS });
    const backups = new ShardBackups(store, { backupDir: null, intervalMs: null, keep: 1, stepPages: 1 }, silentLogger());
    const first = backups.copyTo(path.join(dir, "a.tmp"));
    await expect(backups.copyTo(path.join(dir, "b.tmp"))).rejects.toMatchObject({ code: Status.RESOURCE_EXHAUSTED });
    await first;
  });

  test("a restore never overwrites an existing database, and refuses another shard's backup", async () => {
    const store = open(path.join(dir, "data"));
    store.adoptIdentity({ clusterId: "c1", shardMap: MAP, limits: DEFAULT_TRANSACTION_LIMITS });
    store.applyBatch([appendPart(1, "t1")]);
    const backups = new ShardBackups(store, { backupDir: path.join(dir, "b"), intervalMs: null, keep: 1, stepPages: 64 }, silentLogger());
    const { databaseFile } = (await backups.backupToDir())!;
    const target = path.join(dir, "data", DATABASE_FILE_NAME);
    await expect(installRestoredDatabase(databaseFile, target, { shardId: 0, clusterId: "c1" })).rejects.toThrow(/exists/);
    const other = path.join(dir, "other", DATABASE_FILE_NAME);
    const refusal = installRestoredDatabase(databaseFile, other, { shardId: 1, clusterId: "c1" });
    await expect(refusal).rejects.toThrow(/the backup is of shard 0, not shard 1/);
    await expect(refusal).rejects.toBeInstanceOf(LpError);
    expect(fs.existsSync(other)).toBe(false);
  });
});
