import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULT_TRANSACTION_LIMITS } from "@logplayer/common";
import {
  CLUSTER_META_FILE,
  formatClusterMeta,
  loadClusterMeta,
  parseClusterMeta,
  resolveClusterMeta,
  writeClusterMeta,
} from "./cluster-meta";

const stored = { clusterId: "c-1", shardMap: { shardCount: 4, hash: "fnv1a32" }, limits: DEFAULT_TRANSACTION_LIMITS };

describe("cluster metadata", () => {
  it("needs --shard-count on first start and defaults the cluster id", () => {
    expect(() => resolveClusterMeta(null, { shardCount: undefined, clusterId: undefined }, "new")).toThrow(
      /first start needs --shard-count/,
    );
    expect(resolveClusterMeta(null, { shardCount: 3, clusterId: undefined }, "new")).toEqual({
      clusterId: "new",
      shardMap: { shardCount: 3, hash: "fnv1a32" },
      limits: DEFAULT_TRANSACTION_LIMITS,
    });
  });

  it("records the limit flags given on the first start (defaults for the rest) and refuses different ones later", () => {
    const created = resolveClusterMeta(null, { shardCount: 3, clusterId: undefined, limits: { valueBytesMax: 400_000 } }, "new");
    expect(created.limits).toEqual({ ...DEFAULT_TRANSACTION_LIMITS, valueBytesMax: 400_000 });
    expect(resolveClusterMeta(created, { shardCount: undefined, clusterId: undefined, limits: { valueBytesMax: 400_000 } }, "x")).toBe(
      created,
    );
    expect(resolveClusterMeta(created, { shardCount: undefined, clusterId: undefined, limits: {} }, "x")).toBe(created);
    expect(() =>
      resolveClusterMeta(created, { shardCount: undefined, clusterId: undefined, limits: { valueBytesMax: 300_000 } }, "x"),
    ).toThrow(/--value-bytes-max 300000 \(recorded: 400000\) differs from the cluster's limits/);
  });

  it("reads a format-1 cluster.json (before limits were recorded) with today's defaults", () => {
    const old = JSON.stringify({ formatVersion: 1, clusterId: "c-1", shardMap: { shardCount: 4, hash: "fnv1a32" } });
    expect(parseClusterMeta(old, "f")).toEqual(stored);
    const newer = JSON.parse(formatClusterMeta(stored)) as Record<string, unknown>;
    expect(newer["formatVersion"]).toBe(2);
    expect(() => parseClusterMeta(JSON.stringify({ ...newer, limits: undefined }), "f.json")).toThrow(/f.json is malformed/);
  });

  it("keeps the stored values and refuses different ones, naming both", () => {
    expect(resolveClusterMeta(stored, { shardCount: undefined, clusterId: undefined }, "x")).toBe(stored);
    expect(resolveClusterMeta(stored, { shardCount: 4, clusterId: "c-1" }, "x")).toBe(stored);
    expect(() => resolveClusterMeta(stored, { shardCount: 5, clusterId: undefined }, "x")).toThrow(
      /--shard-count 5 differs .*shard count 4/,
    );
    expect(() => resolveClusterMeta(stored, { shardCount: undefined, clusterId: "c-2" }, "x")).toThrow(
      /"c-2" differs from the stored cluster id "c-1"/,
    );
  });

  it("round-trips through its file format and rejects malformed files", () => {
    expect(parseClusterMeta(formatClusterMeta(stored), "f")).toEqual(stored);
    expect(() => parseClusterMeta("{", "f.json")).toThrow(/f.json is not valid JSON/);
    expect(() => parseClusterMeta('{"formatVersion":1,"clusterId":"a"}', "f.json")).toThrow(/f.json is malformed/);
    expect(() => parseClusterMeta(formatClusterMeta({ ...stored, shardMap: { shardCount: 0, hash: "fnv1a32" } }), "f")).toThrow(
      /shard count 0/,
    );
  });

  it("writes cluster.json once and reads it back later", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "logstore-meta-"));
    try {
      const first = await loadClusterMeta(dir, { shardCount: 2, clusterId: undefined });
      expect(first.created).toBe(true);
      expect(await fs.readdir(dir)).toEqual([]);
      await writeClusterMeta(dir, first.meta);
      const second = await loadClusterMeta(dir, { shardCount: undefined, clusterId: undefined });
      expect(second).toEqual({ meta: first.meta, created: false });
      expect(await fs.readdir(dir)).toEqual([CLUSTER_META_FILE]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
