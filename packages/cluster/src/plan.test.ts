import path from "node:path";
import { AUTO_PORT_MIN, ephemeralPortLow } from "@logplayer/common";
import { autoPortTable, clusterCertificates, clusterPlan, defaultPortTable, planForCompose, type ProcessSpec } from "./plan";

function flag(spec: ProcessSpec, name: string): string {
  const index = spec.args.indexOf(name);
  if (index < 0 || index + 1 >= spec.args.length) throw new Error(`${spec.name} has no ${name}`);
  return spec.args[index + 1]!;
}

function byName(plan: ProcessSpec[], name: string): ProcessSpec {
  const spec = plan.find((s) => s.name === name);
  if (!spec) throw new Error(`no ${name}`);
  return spec;
}

describe("clusterPlan", () => {
  it("plans logstore, then shards by id, then LogPlayers, on the well-known ports", () => {
    const plan = clusterPlan({ dataDir: "/d" });
    expect(plan.map((s) => s.name)).toEqual(["logstore", "shard-0", "shard-1", "shard-2", "logplayer-0"]);
    expect(plan.map((s) => [s.grpcPort, s.metricsPort])).toEqual([
      [7100, 9100],
      [7300, 9300],
      [7301, 9301],
      [7302, 9302],
      [7200, 9200],
    ]);
    expect(plan.map((s) => s.grpcAddress)).toEqual([
      "127.0.0.1:7100",
      "127.0.0.1:7300",
      "127.0.0.1:7301",
      "127.0.0.1:7302",
      "127.0.0.1:7200",
    ]);
  });

  it("gives the LogPlayer every shard address in shard-id order and the LogStore's address", () => {
    const ports = {
      logstore: { grpc: 5000, metrics: 6000 },
      // Deliberately not ascending, so order must come from the shard id.
      shards: [
        { grpc: 5009, metrics: 6009 },
        { grpc: 5003, metrics: 6003 },
        { grpc: 5005, metrics: 6005 },
        { grpc: 5001, metrics: 6001 },
      ],
      logPlayers: [
        { grpc: 5100, metrics: -1 },
        { grpc: 5101, metrics: 6101 },
      ],
    };
    const plan = clusterPlan({ dataDir: "/d", shardCount: 4, logPlayers: 2, ports });
    for (const player of ["logplayer-0", "logplayer-1"]) {
      const spec = byName(plan, player);
      expect(flag(spec, "--shards")).toBe("127.0.0.1:5009,127.0.0.1:5003,127.0.0.1:5005,127.0.0.1:5001");
      expect(flag(spec, "--logstore")).toBe("127.0.0.1:5000");
      expect(flag(spec, "--player-id")).toBe(player);
      expect(spec.dataDir).toBeUndefined();
    }
    expect(flag(byName(plan, "logplayer-0"), "--metrics-port")).toBe("-1");
    for (let shardId = 0; shardId < 4; shardId++) {
      const spec = byName(plan, `shard-${shardId}`);
      expect(flag(spec, "--shard-id")).toBe(String(shardId));
      expect(flag(spec, "--listen")).toBe(`127.0.0.1:${ports.shards[shardId]!.grpc}`);
      expect(flag(spec, "--metrics-port")).toBe(String(ports.shards[shardId]!.metrics));
    }
  });

  it("tells the LogStore and every shard the same shard count", () => {
    const plan = clusterPlan({ dataDir: "/d", shardCount: 7 });
    const counts = plan.filter((s) => s.service !== "logplayer").map((s) => flag(s, "--shard-count"));
    expect(counts).toEqual(Array(8).fill("7"));
    expect(plan.filter((s) => s.service === "shard")).toHaveLength(7);
    expect(flag(byName(plan, "logplayer-0"), "--shards").split(",")).toHaveLength(7);
  });

  it("keeps a stable flag order, with extra args last and state under dataDir/<name>", () => {
    const plan = clusterPlan({ dataDir: "/d", shardCount: 1, logLevel: "warn", extraArgs: { shard: ["--sync", "normal"] } });
    expect(byName(plan, "logstore").args).toEqual([
      "--data-dir",
      path.join("/d", "logstore"),
      "--listen",
      "127.0.0.1:7100",
      "--metrics-port",
      "9100",
      "--shard-count",
      "1",
      "--advertise",
      "127.0.0.1:7100",
      "--shard-addresses",
      "127.0.0.1:7300",
      "--cluster-id",
      "logplayer-local",
      "--log-level",
      "warn",
      "--tls-dir",
      path.join("/d", "tls"),
    ]);
    expect(byName(plan, "shard-0").args).toEqual([
      "--shard-id",
      "0",
      "--data-dir",
      path.join("/d", "shard-0"),
      "--listen",
      "127.0.0.1:7300",
      "--metrics-port",
      "9300",
      "--shard-count",
      "1",
      "--cluster-id",
      "logplayer-local",
      "--log-level",
      "warn",
      "--tls-dir",
      path.join("/d", "tls"),
      "--sync",
      "normal",
    ]);
    expect(byName(plan, "logplayer-0").args).toEqual([
      "--logstore",
      "127.0.0.1:7100",
      "--shards",
      "127.0.0.1:7300",
      "--player-id",
      "logplayer-0",
      "--listen",
      "127.0.0.1:7200",
      "--metrics-port",
      "9200",
      "--log-level",
      "warn",
      "--tls-dir",
      path.join("/d", "tls"),
    ]);
    expect(byName(plan, "shard-0").dataDir).toBe(path.join("/d", "shard-0"));
  });

  it("runs every process with mTLS from <dataDir>/tls, or every one with --insecure, never a mix", () => {
    const secure = clusterPlan({ dataDir: "/d", shardCount: 2, logStoreReplicas: 3 });
    for (const spec of secure)
      expect(spec.args.slice(spec.args.indexOf("--tls-dir"), spec.args.indexOf("--tls-dir") + 2)).toEqual([
        "--tls-dir",
        path.join("/d", "tls"),
      ]);
    const insecure = clusterPlan({ dataDir: "/d", shardCount: 2, insecure: true });
    for (const spec of insecure) expect([spec.args.includes("--insecure"), spec.args.includes("--tls-dir")]).toEqual([true, false]);
    expect(clusterCertificates(secure).map((c) => `${c.role}/${c.name}`)).toEqual([
      "logstore-replica/1",
      "logstore-replica/2",
      "logstore-replica/3",
      "shard/0",
      "shard/1",
      "logplayer/main",
      "client/default",
      "admin/lpctl",
    ]);
  });

  it("refuses inconsistent port tables and counts", () => {
    const ports = defaultPortTable(3, 1);
    expect(() => clusterPlan({ dataDir: "/d", shardCount: 2, ports })).toThrow(/3 shards, expected 2/);
    expect(() => clusterPlan({ dataDir: "/d", shardCount: 0 })).toThrow(/shard count/);
    expect(() => clusterPlan({ dataDir: "/d", logPlayers: 0 })).toThrow(/LogPlayer count/);
    const clash = { ...ports, shards: [ports.shards[0]!, ports.shards[0]!, ports.shards[2]!] };
    expect(() => clusterPlan({ dataDir: "/d", ports: clash })).toThrow(/assigned twice/);
  });

  it("for compose, listens on 0.0.0.0 and reaches peers by service name under /data", () => {
    const plan = planForCompose({ shardCount: 2 });
    const player = byName(plan, "logplayer-0");
    expect(flag(player, "--logstore")).toBe("logstore-1:7100,logstore-2:7101,logstore-3:7102");
    expect(flag(player, "--shards")).toBe("shard-0:7300,shard-1:7301");
    expect(flag(player, "--listen")).toBe("0.0.0.0:7200");
    expect(flag(byName(plan, "logstore-2"), "--advertise")).toBe("logstore-2:7101");
    expect(flag(byName(plan, "shard-1"), "--data-dir")).toBe("/data/shard-1");
  });

  it("a replicated LogStore: every replica gets the same --peers and cluster id, its own --replica-id", () => {
    const plan = clusterPlan({ dataDir: "/d", shardCount: 2, logStoreReplicas: 3 });
    const replicas = plan.filter((p) => p.service === "logstore");
    expect(replicas.map((p) => p.name)).toEqual(["logstore-1", "logstore-2", "logstore-3"]);
    expect(replicas.map((p) => flag(p, "--replica-id"))).toEqual(["1", "2", "3"]);
    const peers = "1=127.0.0.1:7100,2=127.0.0.1:7101,3=127.0.0.1:7102";
    expect(replicas.map((p) => flag(p, "--peers"))).toEqual([peers, peers, peers]);
    expect(new Set(replicas.map((p) => flag(p, "--cluster-id"))).size).toBe(1);
    expect(flag(byName(plan, "logplayer-0"), "--logstore")).toBe("127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102");
    // One replica stays exactly the unreplicated LogStore.
    const single = byName(clusterPlan({ dataDir: "/d", shardCount: 2 }), "logstore");
    expect(single.args).not.toContain("--peers");
    expect(() => clusterPlan({ dataDir: "/d", logStoreReplicas: 2 })).toThrow(/odd/);
  });
});

describe("ephemeralPortLow", () => {
  it("reads the low end of the kernel's range, and falls back to Linux's default", () => {
    expect(ephemeralPortLow(() => "32768\t60999\n")).toBe(32768);
    expect(ephemeralPortLow(() => "40000 65000")).toBe(40000);
    expect(ephemeralPortLow(() => "garbage")).toBe(32768);
    expect(ephemeralPortLow(() => "1024 65000")).toBe(32768); // nothing usable below it
    expect(
      ephemeralPortLow(() => {
        throw new Error("no /proc");
      }),
    ).toBe(32768);
  });
});

describe("autoPortTable", () => {
  it("picks distinct free ports for every process", async () => {
    const table = await autoPortTable(3, 2);
    const ports = [table.logstore, ...table.shards, ...table.logPlayers].flatMap((p) => [p.grpc, p.metrics]);
    expect(ports).toHaveLength(12);
    expect(new Set(ports).size).toBe(12);
    // Below the kernel's ephemeral range, where port-0 binds and outgoing connections cannot take them.
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(AUTO_PORT_MIN);
      expect(port).toBeLessThan(ephemeralPortLow());
    }
    // And the plan accepts it.
    expect(clusterPlan({ dataDir: "/d", shardCount: 3, logPlayers: 2, ports: table })).toHaveLength(6);
  });
});
