import fs from "node:fs";
import Database from "better-sqlite3";
import os from "node:os";
import path from "node:path";
import { AssertionError, DEFAULT_TRANSACTION_LIMITS, LpError, Status } from "@logplayer/common";
import { MutationKind, type Mutation, type Part } from "@logplayer/proto";
import {
  DATABASE_FILE_NAME,
  DEFAULT_PAGE_BYTES,
  DEFAULT_SQLITE_CACHE_BYTES,
  prefixUpperBound,
  REJECTED_PARTS_KEPT_MAX,
  ShardStore,
} from "./store";

const bytes = (text: string): Buffer => Buffer.from(text, "utf8");

function m(kind: MutationKind, key: string, value = "", delta = 0n): Mutation {
  return { kind, key, value: bytes(value), delta };
}
const put = (key: string, value: string) => m(MutationKind.MUTATION_KIND_PUT, key, value);
const append = (key: string, value: string) => m(MutationKind.MUTATION_KIND_APPEND, key, value);
const add = (key: string, delta: bigint) => m(MutationKind.MUTATION_KIND_ADD, key, "", delta);
const del = (key: string) => m(MutationKind.MUTATION_KIND_DELETE, key);

function part(lsn: number, prevLsn: number, mutations: Mutation[] = []): Part {
  return { lsn: BigInt(lsn), prevLsn: BigInt(prevLsn), mutations, commitTimeNs: 0n, dispatchTimeNs: 0n };
}

/** Values of at most 10 bytes, to reach the limit with a few appends. */
const SMALL_VALUES = { ...DEFAULT_TRANSACTION_LIMITS, valueBytesMax: 10 };

const text = (value: Buffer | undefined): string | undefined => value?.toString("utf8");

describe("ShardStore", () => {
  let dir: string;
  let store: ShardStore | undefined;
  const open = (shardId = 0): ShardStore => {
    store = ShardStore.open(dir, shardId);
    return store;
  };

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "shard-store-"));
  });
  afterEach(() => {
    store?.close();
    store = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("a new store starts at applied LSN 0 with the given shard id", () => {
    const s = open(3);
    expect(s.appliedLsn).toBe(0n);
    expect(s.identity).toEqual({ shardId: 3, clusterId: "", shardMap: null, limits: null });
  });

  test("applies, skips duplicates, refuses gaps", () => {
    const s = open();
    expect(s.applyBatch([part(1, 0, [put("a", "1")])]).appliedLsnAfter).toBe(1n);
    const dup = s.applyBatch([part(1, 0, [put("a", "overwritten?")])]);
    expect(dup).toMatchObject({ duplicates: 1, apply: [], appliedLsnAfter: 1n });
    expect(text(s.get("a"))).toBe("1");
    const gap = s.applyBatch([part(5, 4, [put("b", "x")])]);
    expect(gap.gap).toEqual({ lsn: 5n, prevLsn: 4n });
    expect(s.get("b")).toBeUndefined();
    expect(s.appliedLsn).toBe(1n);
    // A dummy advances the applied LSN only.
    expect(s.applyBatch([part(4, 1)]).appliedLsnAfter).toBe(4n);
    expect(s.applyBatch([part(5, 4, [put("b", "x")])]).appliedLsnAfter).toBe(5n);
    expect(text(s.get("b"))).toBe("x");
  });

  test("a batch with a gap applies the prefix and nothing after the gap", () => {
    const s = open();
    const plan = s.applyBatch([
      part(1, 0, [put("a", "1")]),
      part(2, 1, [append("b", "x")]),
      part(4, 3, [put("c", "never")]),
      part(5, 4, [put("d", "never")]),
    ]);
    expect(plan.apply.map((p) => p.lsn)).toEqual([1n, 2n]);
    expect(plan.gap).toEqual({ lsn: 4n, prevLsn: 3n });
    expect(s.appliedLsn).toBe(2n);
    expect(text(s.get("a"))).toBe("1");
    expect(text(s.get("b"))).toBe("x");
    expect(s.get("c")).toBeUndefined();
    expect(s.get("d")).toBeUndefined();
  });

  test("a failure inside the transaction rolls the whole batch back", () => {
    const s = open();
    s.applyBatch([part(1, 0, [put("a", "1")])]);
    const broken: Mutation = { kind: MutationKind.MUTATION_KIND_UNSPECIFIED, key: "z", value: bytes(""), delta: 0n };
    expect(() => s.applyBatch([part(2, 1, [put("a", "2"), append("b", "x")]), part(3, 2, [broken])])).toThrow(AssertionError);
    expect(s.appliedLsn).toBe(1n);
    expect(text(s.get("a"))).toBe("1");
    expect(s.get("b")).toBeUndefined();
    // The store is still usable and consistent afterwards.
    expect(s.applyBatch([part(2, 1, [append("b", "y")])]).appliedLsnAfter).toBe(2n);
    expect(text(s.get("b"))).toBe("y");
  });

  test("APPEND and ADD are applied once despite repeated deliveries", () => {
    const s = open();
    const batch = [part(1, 0, [append("log", "a"), add("n", 5n)]), part(2, 1, [append("log", "b"), add("n", -2n)])];
    for (let i = 0; i < 3; i++) s.applyBatch(batch);
    s.applyBatch(batch.slice(1));
    expect(text(s.get("log"))).toBe("ab");
    expect(text(s.get("n"))).toBe("3");
  });

  test("PUT then DELETE within one part, and DELETE of an absent key", () => {
    const s = open();
    s.applyBatch([part(1, 0, [put("k", "v"), del("k"), del("absent")])]);
    expect(s.get("k")).toBeUndefined();
    expect(s.appliedLsn).toBe(1n);
  });

  test("reopening keeps the applied LSN, the data and the learned identity", () => {
    const s = open(2);
    s.adoptIdentity({ clusterId: "c1", shardMap: { shardCount: 4, hash: "fnv1a32" }, limits: SMALL_VALUES });
    s.applyBatch([part(3, 0, [append("a", "x")]), part(7, 3, [append("a", "y")])]);
    s.close();
    const again = open(2);
    expect(again.appliedLsn).toBe(7n);
    expect(again.durableLsn).toBe(7n);
    expect(text(again.get("a"))).toBe("xy");
    expect(again.identity).toEqual({ shardId: 2, clusterId: "c1", shardMap: { shardCount: 4, hash: "fnv1a32" }, limits: SMALL_VALUES });
  });

  test("a part that would grow a value past value_bytes_max is rejected whole, recorded, and consumed", () => {
    const s = open();
    s.adoptIdentity({ limits: SMALL_VALUES });
    s.applyBatch([part(1, 0, [put("a", "12345678")])]);
    // Part 2 would make "a" 11 bytes: none of it applies, not even the PUT of "b"; part 3 still applies.
    const plan = s.applyBatch([part(2, 1, [put("b", "x"), append("a", "abc")]), part(3, 2, [append("a", "90")])]);
    expect(plan.appliedLsnAfter).toBe(3n);
    expect(plan.rejectedLsns).toEqual([2n]);
    expect(s.get("b")).toBeUndefined();
    expect(text(s.get("a"))).toBe("1234567890");
    expect(s.outcome(1n)).toEqual({ kind: "applied" });
    expect(s.outcome(2n)).toEqual({
      kind: "rejected",
      reason: expect.stringMatching(/^VALUE_TOO_LARGE: mutation 1 \(MUTATION_KIND_APPEND\)/),
    });
    expect(s.outcome(3n)).toEqual({ kind: "applied" });
    expect(s.outcome(4n)).toEqual({ kind: "pending" });
    // A resend of the rejected part is a duplicate like any other, and the outcome survives a reopen.
    expect(s.applyBatch([part(2, 1, [put("b", "x"), append("a", "abc")])])).toMatchObject({ duplicates: 1, rejectedLsns: [] });
    s.close();
    expect(open().outcome(2n).kind).toBe("rejected");
  });

  test("rejections are remembered up to REJECTED_PARTS_KEPT_MAX; older ones read as unknown, never as applied", () => {
    const s = open();
    s.adoptIdentity({ limits: { ...SMALL_VALUES, valueBytesMax: 0 } });
    const parts = Array.from({ length: REJECTED_PARTS_KEPT_MAX + 2 }, (_, i) => part(i + 1, i, [append("a", "x")]));
    for (let i = 0; i < parts.length; i += 1000) s.applyBatch(parts.slice(i, i + 1000));
    expect(s.outcome(1n)).toEqual({ kind: "unknown" });
    expect(s.outcome(2n)).toEqual({ kind: "unknown" });
    expect(s.outcome(3n).kind).toBe("rejected");
    expect(s.outcome(BigInt(parts.length)).kind).toBe("rejected");
  });

  test("the durable LSN advances only at a checkpoint", () => {
    const s = open();
    s.applyBatch([part(1, 0, [put("a", "1")])]);
    expect(s.durableLsn).toBe(0n);
    expect(s.checkpoint()).toBe(1n);
    expect(s.durableLsn).toBe(1n);
  });

  test("SQLite's page cache is bounded by cacheBytes (16 MiB by default)", () => {
    expect(open().cacheBytes).toBe(DEFAULT_SQLITE_CACHE_BYTES);
    store!.close();
    store = ShardStore.open(dir, 0, { cacheBytes: 1024 * 1024 + 100 });
    expect(store.cacheBytes).toBe(1024 * 1024);
    expect(() => ShardStore.open(dir, 0, { cacheBytes: 1024 })).toThrow(AssertionError);
  });

  test("a new database takes the configured page size; an existing one keeps its own", () => {
    expect(open().pageBytes).toBe(DEFAULT_PAGE_BYTES);
    store!.applyBatch([part(1, 0, [put("a", "1")])]);
    store!.close();
    store = ShardStore.open(dir, 0, { pageBytes: 8192 });
    expect(store.pageBytes).toBe(DEFAULT_PAGE_BYTES);
    expect(text(store.get("a"))).toBe("1");
    store.close();
    const other = fs.mkdtempSync(path.join(os.tmpdir(), "shard-store-"));
    try {
      store = ShardStore.open(other, 0, { pageBytes: 8192 });
      expect(store.pageBytes).toBe(8192);
      store.close();
    } finally {
      store = undefined;
      fs.rmSync(other, { recursive: true, force: true });
    }
    expect(() => ShardStore.open(dir, 0, { pageBytes: 3000 })).toThrow(AssertionError);
  });

  test("a second process on the same data directory is refused", () => {
    open();
    expect(() => ShardStore.open(dir, 0)).toThrow(/cannot open shard database .*locked/);
  });

  test("a version 1 database (kv WITHOUT ROWID) is migrated on open: same data, applied LSN and identity", () => {
    // A version 1 file as the earlier code wrote it.
    const v1 = new Database(path.join(dir, DATABASE_FILE_NAME));
    v1.exec(`
      CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
      CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
      INSERT INTO meta VALUES ('schema_version', 1), ('shard_id', 3), ('cluster_id', 'c-1'), ('applied_lsn', 42);
      INSERT INTO kv VALUES ('k1', x'6f6e65'), ('k2', x'74776f');
    `);
    v1.close();
    const migrated = open(3);
    expect(migrated.appliedLsn).toBe(42n);
    expect(migrated.identity).toMatchObject({ shardId: 3, clusterId: "c-1" });
    expect(text(migrated.get("k1"))).toBe("one");
    expect(migrated.scan("k", "", 10, 1 << 20).items.map((i) => i.key)).toEqual(["k1", "k2"]);
    migrated.applyBatch([part(43, 42, [put("k3", "three")])]);
    migrated.close();
    store = undefined;
    const check = new Database(path.join(dir, DATABASE_FILE_NAME), { readonly: true });
    const kv = check.prepare("SELECT sql FROM sqlite_master WHERE name = 'kv'").get() as { sql: string };
    const version = check.prepare("SELECT value FROM meta WHERE name = 'schema_version'").get() as { value: number };
    const rows = check.prepare("SELECT count(*) AS n FROM kv").get() as { n: number };
    check.close();
    expect(kv.sql).not.toMatch(/WITHOUT ROWID/i);
    expect(version.value).toBe(2);
    expect(rows.n).toBe(3);
    expect(text(open(3).get("k3"))).toBe("three");
  });

  test("a database from a newer version is refused", () => {
    open().close();
    store = undefined;
    const db = new Database(path.join(dir, DATABASE_FILE_NAME));
    db.prepare("UPDATE meta SET value = 99 WHERE name = 'schema_version'").run();
    db.close();
    expect(() => open()).toThrow(/schema version 99 is not the supported 2/);
  });

  test("a corrupt database file fails with a message naming the file", () => {
    fs.writeFileSync(path.join(dir, DATABASE_FILE_NAME), Buffer.alloc(8192, 0x5a));
    let error: unknown;
    try {
      ShardStore.open(dir, 0);
    } catch (err: unknown) {
      error = err;
    }
    expect(LpError.is(error)).toBe(true);
    expect((error as LpError).code).toBe(Status.FAILED_PRECONDITION);
    expect((error as LpError).message).toContain(path.join(dir, DATABASE_FILE_NAME));
  });
});

describe("ShardStore.scan", () => {
  let dir: string;
  let store: ShardStore;
  const keys = ["a", "ab", "abc", "abd", "ac", "b", "a\uffff", "a\u{10000}", "a\u{10ffff}", "a\u{10ffff}z"];

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "shard-scan-"));
    store = ShardStore.open(dir, 0);
    store.applyBatch([
      part(
        1,
        0,
        keys.map((key) => put(key, `v-${key}`)),
      ),
    ]);
  });
  afterAll(() => {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // UTF-8 byte order, which is what SQLite's BINARY collation compares.
  const utf8Sorted = (list: string[]): string[] => [...list].sort((x, y) => Buffer.compare(bytes(x), bytes(y)));
  const scanKeys = (prefix: string, startAfter = "", itemsMax = 100, bytesMax = 1 << 20) =>
    store.scan(prefix, startAfter, itemsMax, bytesMax);

  test("returns exactly the keys with the prefix, in UTF-8 byte order", () => {
    for (const prefix of ["", "a", "ab", "a\u{10ffff}", "b", "c", "a\uffff"]) {
      const result = scanKeys(prefix);
      expect(result.items.map((i) => i.key)).toEqual(utf8Sorted(keys.filter((k) => k.startsWith(prefix))));
      expect(result.more).toBe(false);
    }
    expect(text(scanKeys("abc").items[0]?.value)).toBe("v-abc");
  });

  test("pages with start_after and a limit, flagging more", () => {
    const all = utf8Sorted(keys.filter((k) => k.startsWith("a")));
    const seen: string[] = [];
    let startAfter = "";
    for (let page = 0; page < 20; page++) {
      const result = scanKeys("a", startAfter, 3);
      expect(result.items.length).toBeLessThanOrEqual(3);
      seen.push(...result.items.map((i) => i.key));
      if (!result.more) break;
      startAfter = result.items.at(-1)!.key;
    }
    expect(seen).toEqual(all);
  });

  test("stops at the byte limit but always returns at least one item", () => {
    const result = scanKeys("a", "", 100, 1);
    expect(result.items).toHaveLength(1);
    expect(result.more).toBe(true);
  });
});

describe("prefixUpperBound", () => {
  test.each([
    ["", null],
    ["a", "b"],
    ["az", "a{"],
    ["a\u{10ffff}", "b"],
    ["\u{10ffff}\u{10ffff}", null],
    ["\ud7ff", "\ue000"],
  ])("%j -> %j", (prefix, expected) => {
    expect(prefixUpperBound(prefix)).toBe(expected);
  });
});
