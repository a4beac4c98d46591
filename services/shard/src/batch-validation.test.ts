import { DEFAULT_TRANSACTION_LIMITS, shardForKey, Status } from "@logplayer/common";
import { MutationKind, type Part } from "@logplayer/proto";
import { checkCommitFence, validateBatch } from "./batch-validation";

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

describe("checkCommitFence", () => {
  test("accepts parts up to the batch's commit LSN, and a commit LSN that stays or grows", () => {
    expect(checkCommitFence([part(1, 0), part(4, 1)], 4n, 0n)).toBeNull();
    expect(checkCommitFence([part(5, 4)], 9n, 9n)).toBeNull();
    expect(checkCommitFence([], 9n, 3n)).toBeNull();
  });

  test("refuses a part beyond the commit LSN, and a commit LSN below the stream's last, with INVALID_ARGUMENT", () => {
    const beyond = checkCommitFence([part(1, 0), part(5, 1)], 4n, 0n);
    expect(beyond?.code).toBe(Status.INVALID_ARGUMENT);
    expect(beyond?.message).toBe("part 5 is beyond the batch's commit_lsn 4: the log has not committed it");
    const backwards = checkCommitFence([part(1, 0)], 6n, 7n);
    expect(backwards?.code).toBe(Status.INVALID_ARGUMENT);
    expect(backwards?.message).toMatch(/commit_lsn 6 is below 7/);
    // A batch with no commit LSN (an older LogPlayer) can carry nothing.
    expect(checkCommitFence([part(1, 0)], 0n, 0n)?.code).toBe(Status.INVALID_ARGUMENT);
  });
});
