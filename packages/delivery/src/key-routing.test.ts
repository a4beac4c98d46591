import { createShardMap, fnv1a32, shardForKey } from "@logplayer/common";
import { fnv1a32Utf8, shardOfKey } from "./key-routing";

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

test("fnv1a32Utf8 equals fnv1a32 over TextEncoder's UTF-8, for every kind of character", () => {
  const keys = [...randomKeys(7, 20_000), "", "a", "\u00ff", "\u07ff", "\u0800", "\uffff", "\ud83d\ude00", "\ud83d", "\ude00", "x\ud800y"];
  const mismatches = keys.filter((key) => fnv1a32Utf8(key) !== fnv1a32(encoder.encode(key)));
  expect(mismatches).toEqual([]);
});

test("shardOfKey routes exactly like common's shardForKey", () => {
  for (const shardCount of [1, 2, 3, 7, 20, 1024]) {
    const map = createShardMap(shardCount);
    const mismatches = randomKeys(shardCount, 2000).filter((key) => shardOfKey(key, map) !== shardForKey(key, map));
    expect(mismatches).toEqual([]);
  }
});
