import { MutationKind, type Mutation } from "@logplayer/proto";
import { DEFAULT_TRANSACTION_LIMITS as L, grpcMessageBytesMax, MUTATION_KIND_NAMES } from "@logplayer/base";
import { DEFAULT_MESSAGE_BYTES_MAX, serviceMessageBytesMax, validateTransaction } from "./limits";
import { Status } from "./errors";

const put = (key: string, value = "v"): Mutation => ({
  kind: MutationKind.MUTATION_KIND_PUT,
  key,
  value: Buffer.from(value),
  delta: 0n,
});

describe("validateTransaction", () => {
  it("accepts a well-formed transaction", () => {
    expect(validateTransaction({ mutations: [put("a")] }, 10, L)).toBeNull();
  });
  it.each([
    ["empty", { mutations: [] }, 0, Status.INVALID_ARGUMENT, /empty transaction/],
    ["unknown kind", { mutations: [{ ...put("a"), kind: 99 as MutationKind }] }, 10, Status.INVALID_ARGUMENT, /unknown mutation kind 99/],
    ["empty key", { mutations: [put("")] }, 10, Status.INVALID_ARGUMENT, /invalid key: empty/],
    ["control char key", { mutations: [put("a\nb")] }, 10, Status.INVALID_ARGUMENT, /control character/],
    ["long key", { mutations: [put("k".repeat(L.keyBytesMax + 1))] }, 10, Status.INVALID_ARGUMENT, /key_bytes_max/],
    ["oversized entry", { mutations: [put("a")] }, L.entryBytesMax + 1, Status.RESOURCE_EXHAUSTED, /entry_bytes_max/],
    [
      "delete with value",
      { mutations: [{ ...put("a"), kind: MutationKind.MUTATION_KIND_DELETE }] },
      10,
      Status.INVALID_ARGUMENT,
      /takes no value/,
    ],
  ])("refuses %s", (_name, txn, bytes, code, message) => {
    const problem = validateTransaction(txn, bytes, L);
    expect(problem?.code).toBe(code);
    expect(problem?.message).toMatch(message);
  });
});

it("base's mutation kinds are proto's MutationKind, number for number", () => {
  const protoKinds = Object.fromEntries(
    Object.entries(MutationKind).filter(([name, value]) => typeof value === "number" && name !== "MUTATION_KIND_UNSPECIFIED" && value >= 0),
  );
  const baseKinds = Object.fromEntries(Object.entries(MUTATION_KIND_NAMES).map(([value, name]) => [name, Number(value)]));
  expect(baseKinds).toEqual(protoKinds);
});

describe("serviceMessageBytesMax", () => {
  const big = { ...L, entryBytesMax: 32 * 1024 * 1024 };
  it("is derived from the cluster's limits when not given, never below the default", () => {
    expect(serviceMessageBytesMax(undefined, L)).toBe(DEFAULT_MESSAGE_BYTES_MAX);
    expect(serviceMessageBytesMax(undefined, big)).toBe(grpcMessageBytesMax(big));
  });
  it("keeps a given value that fits every legal entry and refuses one that does not", () => {
    expect(serviceMessageBytesMax(grpcMessageBytesMax(big), big)).toBe(grpcMessageBytesMax(big));
    expect(() => serviceMessageBytesMax(16 * 1024 * 1024, big)).toThrow(/--message-bytes-max 16777216 is below 33619968/);
  });
});
