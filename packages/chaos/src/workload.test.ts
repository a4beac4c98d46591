import { createShardMap, seededRandom, shardForKey } from "@logplayer/common";
import { parseDuration, formatDuration } from "./report";
import { chooseTxnKeys, workloadKeys } from "./workload";

test("workload keys cover every shard, and each transaction spans two or more shards", () => {
  const map = createShardMap(4);
  const route = (key: string): number => shardForKey(key, map);
  const byShard = workloadKeys(4, 5, route);
  byShard.forEach((keys, shard) => {
    expect(keys).toHaveLength(5);
    for (const key of keys) expect(route(key)).toBe(shard);
  });
  const random = seededRandom(9);
  const spans = new Set<number>();
  for (let i = 0; i < 500; i++) {
    const keys = chooseTxnKeys(byShard, 3, random);
    const shards = new Set(keys.map(route));
    expect(shards.size).toBe(keys.length);
    spans.add(shards.size);
  }
  expect([...spans].sort()).toEqual([2, 3]);
});

test("durations parse and print back", () => {
  expect(parseDuration("60s")).toBe(60_000);
  expect(parseDuration("2m")).toBe(120_000);
  expect(parseDuration("250ms")).toBe(250);
  expect(parseDuration("20")).toBe(20_000);
  expect(parseDuration("soon")).toBeUndefined();
  expect(parseDuration("0s")).toBeUndefined();
  for (const ms of [60_000, 120_000, 1_500, 20_000]) expect(parseDuration(formatDuration(ms))).toBe(ms);
});
