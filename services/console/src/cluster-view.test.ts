import type { ShardStatusResponse, StatusResponse } from "@logplayer/proto";
import { ClusterViewBuilder, type PollResult } from "./cluster-view";
import { parsePrometheusText } from "./prometheus-text";

function logstore(replicaId: string, role: string, commitLsn: bigint, extra: Partial<StatusResponse> = {}): StatusResponse {
  return {
    protocolVersion: 1,
    clusterId: "c",
    shardMap: undefined,
    firstLsn: 1n,
    lastLsn: commitLsn,
    commitLsn,
    role,
    term: 2n,
    leaderAddress: "127.0.0.1:1",
    replicaId,
    replicas: [],
    limits: undefined,
    ...extra,
  } as StatusResponse;
}

function shard(shardId: number, appliedLsn: bigint): ShardStatusResponse {
  return { shardId, appliedLsn, deliveryStreams: 1, diskFull: "" } as ShardStatusResponse;
}

const PLAYER_METRICS = parsePrometheusText(`
# TYPE lp_player_target_state gauge
lp_player_target_state{target="0",state="N",service="logplayer"} 1
lp_player_target_state{target="0",state="S",service="logplayer"} 0
lp_player_target_state{target="1",state="N",service="logplayer"} 0
lp_player_target_state{target="1",state="S",service="logplayer"} 1
lp_player_target_term{target="0"} 3
lp_player_target_term{target="1"} 1
lp_player_target_lag_seconds{target="1"} 4.5
`);

function delayMetrics(counts: [number, number, number]): ReturnType<typeof parsePrometheusText> {
  return parsePrometheusText(
    [
      `lp_shard_apply_delay_seconds_bucket{le="0.01",shard="0"} ${counts[0]}`,
      `lp_shard_apply_delay_seconds_bucket{le="1",shard="0"} ${counts[1]}`,
      `lp_shard_apply_delay_seconds_bucket{le="+Inf",shard="0"} ${counts[2]}`,
    ].join("\n"),
  );
}

function poll(atMs: number, commitLsn: bigint, shard1Up: boolean, delays: [number, number, number]): PollResult {
  return {
    atMs,
    logstores: [
      { name: "logstore-1", address: "a", status: logstore("1", "leader", commitLsn) },
      { name: "logstore-2", address: "b", error: "connection refused" },
    ],
    shards: [
      { shardId: 0, name: "shard-0", address: "s0", status: shard(0, commitLsn), metrics: delayMetrics(delays) },
      shard1Up
        ? { shardId: 1, name: "shard-1", address: "s1", status: shard(1, commitLsn - 5n), metrics: [] }
        : { shardId: 1, name: "shard-1", address: "s1", error: "UNAVAILABLE", metrics: [] },
    ],
    players: [{ name: "logplayer-0", metrics: PLAYER_METRICS }],
  };
}

describe("ClusterViewBuilder", () => {
  it("shows replicas, shards up and down with their lag and delivery state, targets, rate and windowed delays", () => {
    const builder = new ClusterViewBuilder(10);
    const first = builder.build(poll(1000, 100n, true, [1, 2, 2]), 1000);
    expect(first.txnRate).toBeNull();
    expect(first.leader).toBe("logstore-1");
    expect(first.replicas.map((r) => [r.name, r.healthy, r.role])).toEqual([
      ["logstore-1", true, "leader"],
      ["logstore-2", false, "down"],
    ]);
    expect(first.shards[1]).toMatchObject({ up: true, lagEntries: 5, lagSeconds: 4.5, delivery: "S" });
    // The first poll holds everything since the shard started: not in the window.
    expect(first.applyDelay.total).toBe(0);

    const second = builder.build(poll(3000, 140n, false, [4, 6, 7]), 1000);
    expect(second.txnRate).toBe(20);
    expect(second.shards[1]).toMatchObject({ up: false, lagEntries: null, error: "UNAVAILABLE" });
    expect(second.shards[0]).toMatchObject({ up: true, delivery: "N", lagEntries: 0 });
    expect(second.targets.map((t) => [t.target, t.state, t.term])).toEqual([
      [0, "N", 3],
      [1, "S", 1],
    ]);
    expect(second.applyDelay).toEqual({ bounds: [0.01, 1, null], counts: [3, 1, 1], total: 5 });
  });
});
