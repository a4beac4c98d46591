// End to end on real processes: client -> LogStore -> LogPlayer -> shards.
import type { LocalCluster } from "@logplayer/cluster";
import { mutation, type LogPlayerClient } from "@logplayer/client";
import { checkAppendWorkload, keyNames, runAppendWorkload } from "./workload";
import { startTestCluster } from "./harness";

describe("pipeline", () => {
  let cluster: LocalCluster;
  let client: LogPlayerClient;

  beforeAll(async () => {
    cluster = await startTestCluster("pipeline");
    client = await cluster.connectClient();
  });
  afterAll(async () => {
    client?.close();
    await cluster?.stop();
  });

  it("applies multi-shard transactions in LSN order on every shard, exactly once", async () => {
    const keys = keyNames(24, "pipe");
    const touched = new Set(keys.map((k) => client.shardForKey(k)));
    expect(touched.size).toBe(3); // the keys really span every shard
    const result = await runAppendWorkload(client, { keys, keysPerTxn: 4, concurrency: 8, txnsMax: 400, seed: 7 });
    expect(result.unknown).toEqual([]);
    expect(result.acked).toHaveLength(400);
    const lsns = result.acked.map((t) => t.lsn).sort((a, b) => (a < b ? -1 : 1));
    expect(new Set(lsns).size).toBe(400); // one entry per transaction, dense LSNs
    const check = await checkAppendWorkload(client, keys, result);
    expect(check.violations).toEqual([]);
    expect(check.tokensChecked).toBe(400 * 4);
  });

  it("reads with a min LSN see the write the LSN came from (read-your-writes)", async () => {
    for (let i = 0; i < 20; i++) {
      const { lsn } = await client.commit([
        mutation.put(`ryw-a-${i}`, `a${i}`),
        mutation.add(`ryw-n-${i}`, 5),
        mutation.add(`ryw-n-${i}`, -2),
      ]);
      const a = await client.get(`ryw-a-${i}`, { minLsn: lsn });
      expect(a.found).toBe(true);
      expect(a.value.toString()).toBe(`a${i}`);
      expect(a.appliedLsn >= lsn).toBe(true);
      const n = await client.get(`ryw-n-${i}`, { minLsn: lsn });
      expect(n.value.toString()).toBe("3");
    }
    const { lsn } = await client.commit([mutation.delete("ryw-a-0")]);
    expect((await client.get("ryw-a-0", { minLsn: lsn })).found).toBe(false);
    const scan = await client.scan("ryw-a-", { minLsn: lsn });
    expect(scan.items.map((i) => i.key)).toEqual(Array.from({ length: 19 }, (_, i) => `ryw-a-${i + 1}`).sort());
  });
});
