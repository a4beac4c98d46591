import { DEFAULT_TRANSACTION_LIMITS as L, Status } from "@logplayer/common";
import { PROTOCOL_VERSION, type DeliverHello } from "@logplayer/proto";
import { checkHello, reconcileConfiguredIdentity, type ShardIdentity } from "./identity";

const map4 = { shardCount: 4, hash: "fnv1a32" };
const fresh: ShardIdentity = { shardId: 1, clusterId: "", shardMap: null, limits: null };
const known: ShardIdentity = { shardId: 1, clusterId: "c1", shardMap: map4, limits: L };

function hello(fields: Partial<DeliverHello> = {}): DeliverHello {
  return {
    protocolVersion: PROTOCOL_VERSION,
    clusterId: "c1",
    shardMap: map4,
    shardId: 1,
    playerId: "p",
    commitLsn: 0n,
    limits: L,
    logFirstLsn: 0n,
    ...fields,
  };
}

describe("checkHello", () => {
  test("a matching hello is accepted and changes nothing", () => {
    expect(checkHello(known, hello(), PROTOCOL_VERSION)).toEqual({ ok: true });
  });

  test("a shard without a configured identity is a bug, not something a hello can fill in", () => {
    expect(() => checkHello(fresh, hello(), PROTOCOL_VERSION)).toThrow(/identity is configured/);
  });

  test.each([
    ["protocol version", hello({ protocolVersion: 99 }), /protocol version mismatch.*99.*1/],
    ["shard id", hello({ shardId: 2 }), /wrong shard.*shard 2.*shard 1/],
    ["cluster id", hello({ clusterId: "c2" }), /cluster id mismatch.*"c2".*"c1"/],
    ["missing cluster id", hello({ clusterId: "" }), /cluster id mismatch.*"".*"c1"/],
    ["shard map", hello({ shardMap: { shardCount: 8, hash: "fnv1a32" } }), /shard map mismatch.*fnv1a32\/8.*fnv1a32\/4/],
    ["map without this shard", hello({ shardMap: { shardCount: 1, hash: "fnv1a32" } }), /shard 1 does not exist/],
    [
      "set of limits",
      hello({ limits: { ...L, valueBytesMax: 400_000 } }),
      /limits mismatch.*value-bytes-max 400000.*value-bytes-max 262144/,
    ],
  ])("refuses a different %s with FAILED_PRECONDITION naming both", (_what, h, message) => {
    const result = checkHello(known, h, PROTOCOL_VERSION);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe(Status.FAILED_PRECONDITION);
    expect(result.error.message).toMatch(message);
  });

  test("a hello without limits (a LogPlayer that predates them) stands for the defaults", () => {
    expect(checkHello(known, hello({ limits: undefined }), PROTOCOL_VERSION)).toEqual({ ok: true });
    const raised = { ...known, limits: { ...L, valueBytesMax: 400_000 } };
    expect(checkHello(raised, hello({ limits: undefined }), PROTOCOL_VERSION).ok).toBe(false);
  });

  test("a hello without a shard map is malformed", () => {
    const result = checkHello(known, hello({ shardMap: undefined }), PROTOCOL_VERSION);
    expect(result.ok ? null : result.error.code).toBe(Status.INVALID_ARGUMENT);
  });
});

describe("reconcileConfiguredIdentity", () => {
  test("a different --shard-id names both ids", () => {
    expect(() => reconcileConfiguredIdentity(known, { shardId: 2 }, "/d")).toThrow(/\/d holds shard 1, but --shard-id is 2/);
  });

  test("flags fill in what is not stored yet and must agree with what is", () => {
    expect(reconcileConfiguredIdentity(fresh, { shardId: 1, shardCount: 4, clusterId: "c1" }, "/d")).toEqual({
      clusterId: "c1",
      shardMap: map4,
      limits: L,
    });
    expect(reconcileConfiguredIdentity(known, { shardId: 1, shardCount: 4, clusterId: "c1" }, "/d")).toEqual({});
    expect(() => reconcileConfiguredIdentity(known, { shardId: 1, shardCount: 8 }, "/d")).toThrow(/fnv1a32\/4.*fnv1a32\/8/);
    expect(() => reconcileConfiguredIdentity(known, { shardId: 1, clusterId: "c9" }, "/d")).toThrow(/"c1".*"c9"/);
  });

  test("a new data directory without --cluster-id or --shard-count is refused: identity is never learned from the network", () => {
    expect(() => reconcileConfiguredIdentity(fresh, { shardId: 1 }, "/d")).toThrow(/\/d has no --cluster-id or --shard-count yet/);
    expect(() => reconcileConfiguredIdentity(fresh, { shardId: 1, shardCount: 4 }, "/d")).toThrow(/has no --cluster-id yet/);
    expect(() => reconcileConfiguredIdentity(fresh, { shardId: 1, clusterId: "c1" }, "/d")).toThrow(/has no --shard-count yet/);
    // Once stored, the flags may be left out on later starts.
    expect(reconcileConfiguredIdentity(known, { shardId: 1 }, "/d")).toEqual({});
  });

  test("limit flags are recorded on the first start (defaults for the rest) and must match the record afterwards", () => {
    const first = reconcileConfiguredIdentity(
      fresh,
      { shardId: 1, shardCount: 4, clusterId: "c1", transactionLimits: { valueBytesMax: 400_000, keyBytesMax: undefined } },
      "/d",
    );
    expect(first.limits).toEqual({ ...L, valueBytesMax: 400_000 });
    const recorded = { ...known, limits: { ...L, valueBytesMax: 400_000 } };
    expect(reconcileConfiguredIdentity(recorded, { shardId: 1, transactionLimits: { valueBytesMax: 400_000 } }, "/d")).toEqual({});
    expect(() =>
      reconcileConfiguredIdentity(recorded, { shardId: 1, transactionLimits: { valueBytesMax: L.valueBytesMax } }, "/d"),
    ).toThrow(/\/d was created with the cluster's limits \(.*value-bytes-max 400000\), but --value-bytes-max 262144 \(recorded: 400000\)/);
  });

  test("a database from before limits were recorded adopts the defaults (or the flags)", () => {
    expect(reconcileConfiguredIdentity({ ...known, limits: null }, { shardId: 1 }, "/d")).toEqual({ limits: L });
  });
});
