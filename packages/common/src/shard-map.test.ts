import { createShardMap, fnv1a32, sameShardMap, shardForKey, validateShardMap } from "./shard-map";

describe("shard map", () => {
  it("hashes with FNV-1a 32 (known vectors)", () => {
    const enc = new TextEncoder();
    expect(fnv1a32(enc.encode(""))).toBe(0x811c9dc5);
    expect(fnv1a32(enc.encode("a"))).toBe(0xe40c292c);
    expect(fnv1a32(enc.encode("foobar"))).toBe(0xbf9cf968);
  });

  it("routes every key to one shard in range, spreading keys over all shards", () => {
    const map = createShardMap(3);
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) {
      const shard = shardForKey(`key-${i}`, map);
      expect(shard).toBeGreaterThanOrEqual(0);
      expect(shard).toBeLessThan(3);
      counts[shard]!++;
    }
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });

  it("refuses bad maps", () => {
    expect(() => validateShardMap({ shardCount: 0, hash: "fnv1a32" })).toThrow(/shard count/);
    expect(() => validateShardMap({ shardCount: 2, hash: "md5" })).toThrow(/unknown hash/);
    expect(sameShardMap(createShardMap(3), createShardMap(4))).toBe(false);
  });
});
