import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Status } from "./errors";
import {
  BACKUP_MANIFEST_FORMAT,
  checkBackupManifest,
  installRestoredDatabase,
  manifestFileFor,
  manifestToJson,
  measureFile,
  parseBackupManifest,
  type BackupManifest,
} from "./backup-files";

const SHA = "a".repeat(64);
const manifest: BackupManifest = {
  format: BACKUP_MANIFEST_FORMAT,
  clusterId: "c1",
  shardId: 2,
  shardMap: { shardCount: 3, hash: "fnv1a32" },
  appliedLsn: 12345678901234567n,
  sizeBytes: 4096,
  sha256: SHA,
  createdAt: "2026-12-07T20:00:00.000Z",
};

describe("backup manifests", () => {
  test("round-trip through JSON, LSN beyond 2^53 included", () => {
    expect(parseBackupManifest(manifestToJson(manifest), "m.json")).toEqual(manifest);
  });

  test("a malformed manifest is refused with INVALID_ARGUMENT naming the field", () => {
    const json = (fields: Record<string, unknown>) => JSON.stringify({ ...JSON.parse(manifestToJson(manifest)), ...fields });
    expect(() => parseBackupManifest("{", "m.json")).toThrow(/m.json is not JSON/);
    expect(() => parseBackupManifest(json({ format: 2 }), "m.json")).toThrow(/format is 2/);
    expect(() => parseBackupManifest(json({ appliedLsn: 5 }), "m.json")).toThrow(/appliedLsn/);
    expect(() => parseBackupManifest(json({ sha256: "XY" }), "m.json")).toThrow(/sha256/);
    expect(() => parseBackupManifest(json({ shardId: -1 }), "m.json")).toThrow(/shardId/);
  });

  test("checkBackupManifest accepts the expected shard, cluster, size and checksum", () => {
    expect(checkBackupManifest(manifest, { shardId: 2, clusterId: "c1" }, { sha256: SHA, sizeBytes: 4096 })).toBeNull();
    expect(checkBackupManifest(manifest, { shardId: 2, clusterId: null }, { sha256: SHA, sizeBytes: 4096 })).toBeNull();
  });

  test("a wrong shard id, cluster, size or checksum is refused with FAILED_PRECONDITION naming both values", () => {
    const measured = { sha256: SHA, sizeBytes: 4096 };
    const wrongShard = checkBackupManifest(manifest, { shardId: 1, clusterId: "c1" }, measured);
    expect(wrongShard).toMatchObject({ code: Status.FAILED_PRECONDITION, message: "the backup is of shard 2, not shard 1" });
    const wrongCluster = checkBackupManifest(manifest, { shardId: 2, clusterId: "c2" }, measured);
    expect(wrongCluster?.message).toBe('the backup is of cluster "c1", not cluster "c2"');
    const wrongSize = checkBackupManifest(manifest, { shardId: 2, clusterId: "c1" }, { ...measured, sizeBytes: 4095 });
    expect(wrongSize?.message).toBe("the backup file holds 4095 bytes, its manifest says 4096");
    const wrongSum = checkBackupManifest(manifest, { shardId: 2, clusterId: "c1" }, { ...measured, sha256: "b".repeat(64) });
    expect(wrongSum?.message).toContain(`its manifest says ${SHA}`);
  });
});

describe("installRestoredDatabase", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "backup-files-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function writeBackup(content: string, fields: Partial<BackupManifest> = {}): Promise<string> {
    const file = path.join(dir, "shard-2-lsn-7.sqlite");
    fs.writeFileSync(file, content);
    const measured = await measureFile(file);
    fs.writeFileSync(manifestFileFor(file), manifestToJson({ ...manifest, ...measured, appliedLsn: 7n, ...fields }));
    return file;
  }

  test("installs the file, and removes a lost database's WAL and shared-memory files first", async () => {
    const from = await writeBackup("database bytes");
    const target = path.join(dir, "data", "shard.sqlite");
    fs.mkdirSync(path.dirname(target));
    fs.writeFileSync(`${target}-wal`, "stale wal of the lost database");
    fs.writeFileSync(`${target}-shm`, "stale");
    const installed = await installRestoredDatabase(from, target, { shardId: 2, clusterId: "c1" });
    expect(installed.appliedLsn).toBe(7n);
    expect(fs.readFileSync(target, "utf8")).toBe("database bytes");
    expect(fs.existsSync(`${target}-wal`)).toBe(false);
    expect(fs.existsSync(`${target}-shm`)).toBe(false);
    expect(fs.readdirSync(path.dirname(target))).toEqual(["shard.sqlite"]);
  });

  test("a file whose bytes changed after the manifest was written is refused, and nothing is installed", async () => {
    const from = await writeBackup("database bytes");
    fs.writeFileSync(from, "database byteZ");
    const target = path.join(dir, "data", "shard.sqlite");
    await expect(installRestoredDatabase(from, target, { shardId: 2, clusterId: "c1" })).rejects.toThrow(/SHA-256 is/);
    expect(fs.readdirSync(path.dirname(target))).toEqual([]);
  });

  test("another cluster's backup is refused", async () => {
    const from = await writeBackup("database bytes", { clusterId: "other" });
    const target = path.join(dir, "data", "shard.sqlite");
    await expect(installRestoredDatabase(from, target, { shardId: 2, clusterId: "c1" })).rejects.toThrow(
      /cluster "other", not cluster "c1"/,
    );
  });

  test("a backup without its manifest is refused", async () => {
    const from = path.join(dir, "shard-2-lsn-9.sqlite");
    fs.writeFileSync(from, "x");
    await expect(installRestoredDatabase(from, path.join(dir, "d", "shard.sqlite"), { shardId: 2, clusterId: null })).rejects.toThrow(
      /cannot read the backup's manifest/,
    );
  });
});
