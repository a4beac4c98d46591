import { DEFAULT_TRANSACTION_LIMITS, shardForKey, Status } from "@logplayer/common";
import { MutationKind, type Part } from "@logplayer/proto";
import { validateBatch } from "./batch-validation";

const map = { shardCount: 4, hash: "fnv1a32" };
const limits = { batchPartsMax: 3, transaction: DEFAULT_TRANSACTION_LIMITS };

/** The first key of the form k<n> that routes to `shard`. */
function keyFor(shard: number): string {
  for (let i = 0; ; i++) if (shardForKey(`k${i}`, map) === shard) return `k${i}`;
}

function part(lsn: number, prevLsn: number, keys: string[] = []): Part {
  return {
    lsn: BigInt(lsn),
    prevLsn: BigInt(prevLsn),
    mutations: keys.map((key) => ({ kind: MutationKind.MUTATION_KIND_PUT, key, value: Buffer.from("v"), delta: 0n })),
    commitTimeNs: 0n,
    dispatchTimeNs: 0n,
  };
}

const codeOf = (parts: Part[]) => validateBatch(parts, 2, map, limits)?.code ?? null;

describe("validateBatch", () => {
  test("accepts ascending parts whose keys route here, and dummies", () => {
    expect(codeOf([part(1, 0, [keyFor(2)]), part(4, 1), part(9, 2, [keyFor(2), keyFor(2)])])).toBeNull();
    expect(codeOf([])).toBeNull();
  });

  test("refuses parts out of order, repeated, or with prev_lsn >= lsn", () => {
    expect(codeOf([part(3, 0), part(2, 0)])).toBe(Status.INVALID_ARGUMENT);
    expect(codeOf([part(3, 0), part(3, 0)])).toBe(Status.INVALID_ARGUMENT);
    expect(codeOf([part(3, 3)])).toBe(Status.INVALID_ARGUMENT);
    expect(codeOf([part(0, 0)])).toBe(Status.INVALID_ARGUMENT);
  });

  test("refuses a key that belongs to another shard, naming it", () => {
    const other = keyFor(1);
    const problem = validateBatch([part(1, 0, [keyFor(2), other])], 2, map, limits);
    expect(problem?.code).toBe(Status.INVALID_ARGUMENT);
    expect(problem?.message).toContain(`belongs to shard 1, not shard 2`);
  });

  test("refuses malformed mutations and oversized batches", () => {
    expect(codeOf([part(1, 0, [""])])).toBe(Status.INVALID_ARGUMENT);
    expect(codeOf([part(1, 0), part(2, 1), part(3, 2), part(4, 3)])).toBe(Status.RESOURCE_EXHAUSTED);
    expect(codeOf([{ ...part(1, 0), lsn: 2n ** 63n }])).toBe(Status.INVALID_ARGUMENT);
  });
});
