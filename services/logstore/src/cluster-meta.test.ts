import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  CLUSTER_META_FILE,
  formatClusterMeta,
  loadClusterMeta,
  parseClusterMeta,
  resolveClusterMeta,
  writeClusterMeta,
} from "./cluster-meta";

const stored = { clusterId: "c-1", shardMap: { shardCount: 4, hash: "fnv1a32" } };

describe("cluster metadata", () => {
  it("needs --shard-count on first start and defaults the cluster id", () => {
    expect(() => resolveClusterMeta(null, { shardCount: undefined, clusterId: undefined }, "new")).toThrow(
      /first start needs --shard-count/,
    );
    expect(resolveClusterMeta(null, { shardCount: 3, clusterId: undefined }, "new")).toEqual({
      clusterId: "new",
      shardMap: { shardCount: 3, hash: "fnv1a32" },
    });
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
