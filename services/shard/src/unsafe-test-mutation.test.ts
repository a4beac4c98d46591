import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { MutationKind, type Part } from "@logplayer/proto";
import { ShardStore } from "./store";
import { LAZY_APPLIED_LSN_BATCHES, UNSAFE_TEST_MUTATION_ENV, unsafeTestMutationFromEnv } from "./unsafe-test-mutation";

function appendPart(lsn: number, token: string): Part {
  const mutation = { kind: MutationKind.MUTATION_KIND_APPEND, key: "k", value: Buffer.from(token), delta: 0n };
  return { lsn: BigInt(lsn), prevLsn: BigInt(lsn - 1), mutations: [mutation], commitTimeNs: 0n, dispatchTimeNs: 0n };
}

/** Applies parts 1..3 one batch each, reopens the store, and delivers 1..3 again as a restarted LogPlayer would. */
function applyReopenRedeliver(dir: string): { appliedAfterReopen: bigint; value: string } {
  const parts = [appendPart(1, "a;"), appendPart(2, "b;"), appendPart(3, "c;")];
  const first = ShardStore.open(dir, 0);
  for (const part of parts) first.applyBatch([part]);
  first.close();
  const second = ShardStore.open(dir, 0);
  try {
    const appliedAfterReopen = second.appliedLsn;
    second.applyBatch(parts.filter((p) => p.lsn > appliedAfterReopen));
    return { appliedAfterReopen, value: second.get("k")?.toString("utf8") ?? "" };
  } finally {
    second.close();
  }
}

describe("LP_UNSAFE_TEST_MUTATION (chaos self-test only)", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "shard-mutation-"));
  });
  afterEach(() => {
    delete process.env[UNSAFE_TEST_MUTATION_ENV];
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("unset: applied_lsn moves with the data, a re-delivery is recognised", () => {
    expect(applyReopenRedeliver(dir)).toEqual({ appliedAfterReopen: 3n, value: "a;b;c;" });
  });

  test("lazy-applied-lsn: the restarted shard forgets the newest applied LSN and APPENDs twice", () => {
    expect(LAZY_APPLIED_LSN_BATCHES).toBeGreaterThan(3);
    process.env[UNSAFE_TEST_MUTATION_ENV] = "lazy-applied-lsn";
    // Only the first write of applied_lsn (at creation, 0) reached SQLite.
    expect(applyReopenRedeliver(dir)).toEqual({ appliedAfterReopen: 0n, value: "a;b;c;a;b;c;" });
  });

  test("an unknown name is refused, empty means off", () => {
    expect(() => unsafeTestMutationFromEnv({ [UNSAFE_TEST_MUTATION_ENV]: "lazy" })).toThrow(/not one of lazy-applied-lsn/);
    expect(unsafeTestMutationFromEnv({ [UNSAFE_TEST_MUTATION_ENV]: "" })).toBeUndefined();
    expect(unsafeTestMutationFromEnv({})).toBeUndefined();
  });
});
