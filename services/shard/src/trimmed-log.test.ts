import { Status } from "@logplayer/common";
import { checkLogReachesShard } from "./trimmed-log";

describe("checkLogReachesShard", () => {
  test("a log that starts at or below applied_lsn + 1 reaches the shard", () => {
    expect(checkLogReachesShard(2, 0n, 1n, null, null)).toBeNull();
    expect(checkLogReachesShard(2, 99n, 100n, null, null)).toBeNull();
    expect(checkLogReachesShard(2, 500n, 100n, null, null)).toBeNull();
  });

  test("an unknown first LSN (0, an older LogPlayer) refuses nothing", () => {
    expect(checkLogReachesShard(2, 0n, 0n, "/b", null)).toBeNull();
  });

  test("an empty shard against a trimmed log is refused, naming the newest backup to restore", () => {
    const refusal = checkLogReachesShard(2, 0n, 2n, "/b", { file: "/b/shard-2-lsn-40.sqlite", appliedLsn: 40n });
    expect(refusal?.code).toBe(Status.FAILED_PRECONDITION);
    expect(refusal?.message).toContain("shard 2 has applied_lsn 0 but the log starts at LSN 2 (entries 1..1 were trimmed)");
    expect(refusal?.message).toContain("lpctl restore shard 2 --from /b/shard-2-lsn-40.sqlite");
  });

  test("a shard one entry behind the first LSN is refused; the message says when no backup exists", () => {
    expect(checkLogReachesShard(0, 98n, 100n, "/b", null)?.message).toContain("no backup of shard 0 exists in --backup-dir /b");
    expect(checkLogReachesShard(0, 98n, 100n, null, null)?.message).toContain("no --backup-dir is set");
  });

  test("a backup itself trimmed past is named as too old", () => {
    const refusal = checkLogReachesShard(1, 0n, 100n, "/b", { file: "/b/shard-1-lsn-10.sqlite", appliedLsn: 10n });
    expect(refusal?.message).toContain("is trimmed past too; restore one taken at LSN >= 99");
  });
});
