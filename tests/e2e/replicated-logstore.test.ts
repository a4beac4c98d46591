// The whole pipeline over a 3-replica LogStore: kill -9 the Raft leader in the
// middle of an APPEND workload, restart it, and check from the shards' data that
// every acknowledged transaction was applied exactly once, in LSN order.
import { LocalCluster } from "@logplayer/cluster";
import type { LogPlayerClient } from "@logplayer/client";
import { LogStoreClient, type StatusResponse } from "@logplayer/proto";
import { Metadata } from "@grpc/grpc-js";
import { channelCredentialsFor, type TransportSecurity } from "@logplayer/tls";
import { waitFor } from "@logplayer/testing";
import { checkAppendWorkload, keyNames, runAppendWorkload } from "./workload";
import { tempDataDir } from "./harness";

function status(address: string, security: TransportSecurity): Promise<StatusResponse | undefined> {
  const client = new LogStoreClient(address, channelCredentialsFor(security));
  return new Promise((resolve) => {
    client.status({}, new Metadata(), { deadline: Date.now() + 1000 }, (err, response) => {
      client.close();
      resolve(err === null ? response : undefined);
    });
  });
}

async function leaderName(cluster: LocalCluster): Promise<string | undefined> {
  for (const spec of cluster.plan.filter((s) => s.service === "logstore")) {
    if ((await status(spec.grpcAddress, cluster.adminSecurity))?.role === "leader") return spec.name;
  }
  return undefined;
}

describe("a 3-replica LogStore under the whole pipeline", () => {
  let cluster: LocalCluster;
  let client: LogPlayerClient;

  beforeAll(async () => {
    cluster = await LocalCluster.start({
      dataDir: tempDataDir("replicated"),
      shardCount: 3,
      logPlayers: 1,
      logStoreReplicas: 3,
      ports: "auto",
      logLevel: "info",
    });
    await waitFor("a LogStore leader", async () => (await leaderName(cluster)) !== undefined);
    client = await cluster.connectClient({ timeoutMs: 10_000 });
  });
  afterAll(async () => {
    client?.close();
    await cluster?.stop();
  });

  it("kill -9 of the leader: no acknowledged transaction lost, none applied twice", async () => {
    const keys = keyNames(30, "raft-");
    let restart: Promise<unknown> | undefined;
    let killed: string | undefined;
    const result = await runAppendWorkload(client, {
      keys,
      keysPerTxn: 3,
      concurrency: 6,
      txnsMax: 600,
      seed: 31,
      tokenPrefix: "raft.",
      onAck: (acked) => {
        if (acked !== 200) return;
        restart = (async () => {
          killed = await leaderName(cluster);
          expect(killed).toBeDefined();
          cluster.kill(killed!, "SIGKILL");
          await cluster.restart(killed!);
        })();
      },
    });
    await restart;
    expect(killed).toBeDefined();
    expect(result.acked.length).toBeGreaterThan(300);
    const check = await checkAppendWorkload(client, keys, result);
    expect(check.violations).toEqual([]);
    expect(check.tokensChecked).toBeGreaterThanOrEqual(result.acked.length * 3);
  });

  it("every replica killed at once and restarted: no acknowledged transaction lost, none applied twice", async () => {
    const keys = keyNames(30, "raft-all-");
    const names = cluster.plan.filter((s) => s.service === "logstore").map((s) => s.name);
    let restart: Promise<unknown> | undefined;
    const result = await runAppendWorkload(client, {
      keys,
      keysPerTxn: 3,
      concurrency: 6,
      txnsMax: 500,
      seed: 32,
      tokenPrefix: "raft-all.",
      onAck: (acked) => {
        if (acked !== 150) return;
        for (const name of names) cluster.kill(name, "SIGKILL");
        restart = Promise.all(names.map((name) => cluster.restart(name)));
      },
    });
    await restart;
    expect(result.acked.length).toBeGreaterThan(250);
    const check = await checkAppendWorkload(client, keys, result);
    expect(check.violations).toEqual([]);
    expect(check.tokensChecked).toBeGreaterThanOrEqual(result.acked.length * 3);
  });
});
