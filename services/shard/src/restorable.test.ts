import { checkpointMadeDurable, currentRestorableLsn } from "./restorable";

describe("currentRestorableLsn", () => {
  const store = { durableLsn: 90n };
  const backup = (appliedLsn: bigint) => ({ manifest: { appliedLsn } });

  it("follows the durable LSN for a shard without --backup-dir", () => {
    expect(currentRestorableLsn(store, { backupDir: null, newest: null })).toBe(90n);
  });

  it("with --backup-dir, is held at the newest backup's LSN, and at 0 until the first backup", () => {
    expect(currentRestorableLsn(store, { backupDir: "/b", newest: backup(60n) })).toBe(60n);
    expect(currentRestorableLsn(store, { backupDir: "/b", newest: null })).toBe(0n);
  });
});

describe("checkpointMadeDurable", () => {
  it("holds when the checkpoint copied every frame", () => {
    expect(checkpointMadeDurable({ busy: 0, log: 12, checkpointed: 12 })).toBe(true);
    expect(checkpointMadeDurable({ busy: 0, log: 0, checkpointed: 0 })).toBe(true);
  });

  it("does not hold when a reader kept frames uncopied (the WAL may not have been synced)", () => {
    expect(checkpointMadeDurable({ busy: 0, log: 12, checkpointed: 7 })).toBe(false);
  });

  it("does not hold when busy, outside WAL mode or without an answer", () => {
    expect(checkpointMadeDurable({ busy: 1, log: 12, checkpointed: 12 })).toBe(false);
    expect(checkpointMadeDurable({ busy: 0, log: -1, checkpointed: -1 })).toBe(false);
    expect(checkpointMadeDurable(undefined)).toBe(false);
  });
});
