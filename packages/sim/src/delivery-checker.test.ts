import { createShardMap, shardForKey } from "@logplayer/common";
import { MutationKind, type LogEntry } from "@logplayer/proto";
import { DeliveryChecker, DeliveryViolation, type ShardView } from "./delivery-checker";

// Each rule of the checker must fire on the state it forbids, and only then.

const shardMap = createShardMap(2);
const keyOn = (shard: number, n: number): string => {
  const keys: string[] = [];
  for (let i = 0; keys.length <= n; i++) if (shardForKey(`k${i}`, shardMap) === shard) keys.push(`k${i}`);
  return keys[n] ?? "";
};
const a = keyOn(0, 0);
const b = keyOn(0, 1);
const c = keyOn(1, 0);

function entry(lsn: number, keys: string[]): LogEntry {
  const mutations = keys.map((key, i) => ({
    kind: MutationKind.MUTATION_KIND_APPEND,
    key,
    value: Buffer.from(`t${lsn}.${i};`),
    delta: 0n,
  }));
  return { lsn: BigInt(lsn), term: 1n, txn: { mutations }, commitTimeNs: 0n, clientId: "", clientSeq: BigInt(lsn) };
}

/** LSN 1 touches a and c, 2 touches c only, 3 touches a and b. */
function checker(): DeliveryChecker {
  const check = new DeliveryChecker(shardMap);
  check.onCommit(entry(1, [a, c]));
  check.onCommit(entry(2, [c]));
  check.onCommit(entry(3, [a, b]));
  return check;
}

function shard0(appliedLsn: number, parts: number[], kv: Record<string, string>): ShardView {
  return {
    index: 0,
    appliedLsn: BigInt(appliedLsn),
    appliedParts: parts.map(BigInt),
    kv: new Map(Object.entries(kv).map(([key, value]) => [key, Buffer.from(value)])),
  };
}

describe("delivery checker", () => {
  test("the filtered log per shard", () => {
    expect(checker().filtered).toEqual([
      [1n, 3n],
      [1n, 2n],
    ]);
  });

  test("a correct shard passes at every applied LSN, dummies included", () => {
    const check = checker();
    check.checkShard(shard0(0, [], {}));
    check.checkShard(shard0(2, [1], { [a]: "t1.0;" }));
    check.checkShard(shard0(3, [1, 3], { [a]: "t1.0;t3.0;", [b]: "t3.1;" }));
    check.checkComplete(shard0(3, [1, 3], { [a]: "t1.0;t3.0;", [b]: "t3.1;" }));
  });

  test("a part applied twice is a violation", () => {
    expect(() => checker().checkShard(shard0(1, [1, 1], { [a]: "t1.0;t1.0;" }))).toThrow(
      /exactly-once: shard 0 applied part #2 = LSN 1, expected 3/,
    );
  });

  test("a skipped part is a violation, even with consistent data", () => {
    expect(() => checker().checkShard(shard0(3, [3], { [a]: "t3.0;", [b]: "t3.1;" }))).toThrow(/exactly-once: .* LSN 3, expected 1/);
    expect(() => checker().checkShard(shard0(3, [1], { [a]: "t1.0;" }))).toThrow(/never applied LSN 3 \(skipped\)/);
  });

  test("half an entry's mutations, or data past the applied LSN, is an atomicity violation", () => {
    expect(() => checker().checkShard(shard0(3, [1, 3], { [a]: "t1.0;t3.0;" }))).toThrow(/atomicity: shard 0 key k\d+ at applied LSN 3/);
    expect(() => checker().checkShard(shard0(2, [1, 3], { [a]: "t1.0;t3.0;", [b]: "t3.1;" }))).toThrow(
      /atomicity: .* part 3 above its applied LSN 2/,
    );
  });

  test("a read older than its minLsn, or not the state at its applied LSN, is a read-your-writes violation", () => {
    const check = checker();
    check.checkRead(0, a, 3n, 3n, Buffer.from("t1.0;t3.0;"));
    expect(() => check.checkRead(0, a, 3n, 2n, Buffer.from("t1.0;"))).toThrow(/read-your-writes: .* at applied 2 < minLsn 3/);
    expect(() => check.checkRead(0, a, 1n, 3n, Buffer.from("t1.0;"))).toThrow(/read-your-writes: shard 0 key/);
    expect(check.readsChecked).toBe(3);
  });

  test("quiescence needs the whole filtered log", () => {
    expect(() => checker().checkComplete(shard0(2, [1], { [a]: "t1.0;" }))).toThrow(/liveness: shard 0 at 2, log at 3/);
  });

  test("the log itself must be dense", () => {
    const check = new DeliveryChecker(shardMap);
    expect(() => check.onCommit(entry(2, [a]))).toThrow(DeliveryViolation);
  });
});
