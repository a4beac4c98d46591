import { createShardMap, fnv1a32, fnv1a32Utf8, sameShardMap, shardForKey, validateShardMap } from "./shard-map";

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

/** Seeded random strings mixing ASCII, 2- and 3-byte characters, astral pairs and lone surrogates. */
function randomKeys(seed: number, count: number): string[] {
  let state = seed >>> 0;
  const next = (n: number): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % n;
  };
  const pools = [
    () => String.fromCharCode(0x20 + next(0x5f)),
    () => String.fromCharCode(0x80 + next(0x780)),
    () => String.fromCharCode(0x800 + next(0xd000)),
    () => String.fromCodePoint(0x10000 + next(0xfffff)),
    () => String.fromCharCode(0xd800 + next(0x800)), // lone surrogate, either half
    () => String.fromCharCode(0xe000 + next(0x2000)),
  ];
  return Array.from({ length: count }, () => {
    let key = "";
    const length = 1 + next(12);
    for (let i = 0; i < length; i++) key += pools[next(pools.length)]!();
    return key;
  });
}

const encoder = new TextEncoder();

it("fnv1a32Utf8 equals fnv1a32 over TextEncoder's UTF-8, for every kind of character", () => {
  const keys = [...randomKeys(7, 20_000), "", "a", "\u00ff", "\u07ff", "\u0800", "\uffff", "\ud83d\ude00", "\ud83d", "\ude00", "x\ud800y"];
  const mismatches = keys.filter((key) => fnv1a32Utf8(key) !== fnv1a32(encoder.encode(key)));
  expect(mismatches).toEqual([]);
});
