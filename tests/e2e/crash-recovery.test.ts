// SIGKILL each kind of process in the middle of an APPEND workload, restart it,
// and check from the data that every acknowledged transaction was applied
// exactly once, in LSN order, on every key it touched.
import type { LocalCluster } from "@logplayer/cluster";
import type { LogPlayerClient } from "@logplayer/client";
import { checkAppendWorkload, keyNames, runAppendWorkload } from "./workload";
import { startTestCluster } from "./harness";

async function killMidStream(cluster: LocalCluster, client: LogPlayerClient, victim: string, seed: number): Promise<void> {
  const keys = keyNames(30, `${victim}-`);
  let restart: Promise<unknown> | undefined;
  const result = await runAppendWorkload(client, {
    keys,
    keysPerTxn: 3,
    concurrency: 6,
    txnsMax: 600,
    seed,
    tokenPrefix: `${victim}.`,
    onAck: (acked) => {
      if (acked === 200) {
        cluster.kill(victim, "SIGKILL");
        restart = cluster.restart(victim);
      }
    },
  });
  expect(restart).toBeDefined();
  await restart;
  expect(result.acked.length).toBeGreaterThan(200);
  const check = await checkAppendWorkload(client, keys, result);
  expect(check.violations).toEqual([]);
  expect(check.tokensChecked).toBeGreaterThanOrEqual(result.acked.length * 3);
}

describe("crash recovery (kill -9 and restart under load)", () => {
  let cluster: LocalCluster;
  let client: LogPlayerClient;

  beforeAll(async () => {
    cluster = await startTestCluster("crash");
    client = await cluster.connectClient({ timeoutMs: 10_000 });
  });
  afterAll(async () => {
    client?.close();
    await cluster?.stop();
  });

  it("a shard", () => killMidStream(cluster, client, "shard-1", 11));
  it("the LogPlayer", () => killMidStream(cluster, client, "logplayer-0", 12));
  it("the LogStore: no acknowledged transaction lost or duplicated", () => killMidStream(cluster, client, "logstore", 13));
});

describe("two LogPlayers at once", () => {
  let cluster: LocalCluster;
  let client: LogPlayerClient;

  beforeAll(async () => {
    cluster = await startTestCluster("two-players", { logPlayers: 2 });
    client = await cluster.connectClient();
  });
  afterAll(async () => {
    client?.close();
    await cluster?.stop();
  });

  it("still delivers exactly once, in order", async () => {
    const keys = keyNames(24, "dual-");
    const result = await runAppendWorkload(client, { keys, keysPerTxn: 3, concurrency: 6, txnsMax: 500, seed: 21 });
    expect(result.unknown).toEqual([]);
    const check = await checkAppendWorkload(client, keys, result);
    expect(check.violations).toEqual([]);
    expect(check.tokensChecked).toBe(500 * 3);
  });

  it("and when one of the two is killed and restarted mid-stream", () => killMidStream(cluster, client, "logplayer-1", 22));
});
