import v8 from "node:v8";
import vm from "node:vm";
import { EntryCache } from "./entry-cache";
import { seededRandom, testEntry } from "./test-entries";

const random = seededRandom(3);
const entry = (lsn: number) => testEntry(BigInt(lsn), random, 10);

describe("EntryCache", () => {
  it("keeps the newest entries within cacheBytesMax", () => {
    const cache = new EntryCache(100);
    for (let lsn = 1; lsn <= 50; lsn++) cache.add(entry(lsn), 30);
    expect(cache.bytes).toBeLessThanOrEqual(100);
    expect(cache.size).toBe(3);
    expect(cache.firstLsn).toBe(48n);
    expect(cache.lastLsn).toBe(50n);
    expect(cache.get(47n)).toBeUndefined();
    expect(cache.get(49n)?.lsn).toBe(49n);
  });

  it("ranges stop at bytesMax, entriesMax and the end, but return at least one entry", () => {
    const cache = new EntryCache(10_000);
    for (let lsn = 1; lsn <= 20; lsn++) cache.add(entry(lsn), 10);
    expect(cache.range(5n, 20n, 35, 100).map((e) => e.lsn)).toEqual([5n, 6n, 7n]);
    expect(cache.range(5n, 20n, 1, 100)).toHaveLength(1);
    expect(cache.range(5n, 20n, 10_000, 2)).toHaveLength(2);
    expect(cache.range(19n, 25n, 10_000, 100).map((e) => e.lsn)).toEqual([19n, 20n]);
    expect(cache.range(21n, 25n, 10_000, 100)).toEqual([]);
  });

  it("truncates a suffix and restarts on a non-contiguous LSN", () => {
    const cache = new EntryCache(10_000);
    for (let lsn = 1; lsn <= 10; lsn++) cache.add(entry(lsn), 10);
    cache.truncateAfter(6n);
    expect(cache.lastLsn).toBe(6n);
    expect(cache.bytes).toBe(60);
    cache.add(entry(7), 10);
    expect(cache.get(7n)?.lsn).toBe(7n);
    cache.add(entry(100), 10);
    expect(cache.size).toBe(1);
    expect(cache.firstLsn).toBe(100n);
  });

  it("lets evicted entries be collected at once, before any compaction", async () => {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const cache = new EntryCache(100);
    const refs: WeakRef<object>[] = [];
    for (let lsn = 1; lsn <= 50; lsn++) {
      const e = entry(lsn);
      refs.push(new WeakRef(e));
      cache.add(e, 30);
    }
    // WeakRef targets stay alive until the current job ends.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    const alive = refs.map((ref, i) => (ref.deref() === undefined ? 0 : i + 1)).filter((lsn) => lsn > 0);
    expect(alive).toEqual([48, 49, 50]);
  });

  it("compacts its arrays under steady eviction", () => {
    const cache = new EntryCache(50);
    for (let lsn = 1; lsn <= 5000; lsn++) cache.add(entry(lsn), 10);
    expect(cache.size).toBe(5);
    expect(cache.range(4996n, 5000n, 1000, 100).map((e) => e.lsn)).toEqual([4996n, 4997n, 4998n, 4999n, 5000n]);
  });
});
