import { clusterPlan } from "@logplayer/cluster";
import { raftLinks, raftLinksOf, raftReplicas, rewritePeerList, routePeersThroughIngress } from "./raft-links";

const plan = clusterPlan({ dataDir: "/tmp/unused", shardCount: 2, logPlayers: 1, logStoreReplicas: 3 });

function peersOf(args: readonly string[]): string {
  return args[args.indexOf("--peers") + 1]!;
}

test("the replicas and their ordered pairs come from the plan", () => {
  const replicas = raftReplicas(plan);
  expect(replicas.map((r) => [r.name, r.replicaId, r.address])).toEqual([
    ["logstore-1", 1, "127.0.0.1:7100"],
    ["logstore-2", 2, "127.0.0.1:7101"],
    ["logstore-3", 3, "127.0.0.1:7102"],
  ]);
  const links = raftLinks(replicas);
  expect(links.map((l) => l.name)).toEqual([
    "logstore-1→logstore-2",
    "logstore-1→logstore-3",
    "logstore-2→logstore-1",
    "logstore-2→logstore-3",
    "logstore-3→logstore-1",
    "logstore-3→logstore-2",
  ]);
  // Partitioning one replica cuts both directions to each other replica.
  expect(raftLinksOf(links, "logstore-2").map((l) => l.name)).toEqual([
    "logstore-1→logstore-2",
    "logstore-2→logstore-1",
    "logstore-2→logstore-3",
    "logstore-3→logstore-2",
  ]);
  expect(raftReplicas(clusterPlan({ dataDir: "/tmp/unused", shardCount: 2, logPlayers: 1 }))).toEqual([]);
});

test("every replica gets the same rewritten --peers (their peer-list hashes must agree), nothing else changes", () => {
  const ingress = new Map([
    [1, "127.0.0.1:40001"],
    [2, "127.0.0.1:40002"],
    [3, "127.0.0.1:40003"],
  ]);
  const specs = plan.filter((s) => s.service === "logstore");
  const routed = specs.map((s) => routePeersThroughIngress(s, ingress));
  for (const [i, spec] of routed.entries()) {
    expect(peersOf(spec.args)).toBe("1=127.0.0.1:40001,2=127.0.0.1:40002,3=127.0.0.1:40003");
    const original = specs[i]!;
    expect(spec.args.filter((a) => a !== peersOf(spec.args))).toEqual(original.args.filter((a) => a !== peersOf(original.args)));
    expect(spec.grpcAddress).toBe(original.grpcAddress);
  }
  expect(() => rewritePeerList("1=a:1,4=b:2", ingress)).toThrow(/no address for replica 4/);
});
