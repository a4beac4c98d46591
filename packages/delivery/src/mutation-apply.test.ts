import { AssertionError } from "@logplayer/base";
import { MutationKind, type Mutation } from "@logplayer/proto";
import { applyMutation, applyPartMutations, decodeInt64, encodeInt64 } from "./mutation-apply";

const bytes = (text: string): Buffer => Buffer.from(text, "utf8");
const text = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : new TextDecoder().decode(value));

function mutation(kind: MutationKind, fields: Partial<Mutation> = {}): Mutation {
  return { kind, key: "k", value: Buffer.alloc(0), delta: 0n, ...fields };
}

const put = (value: string) => mutation(MutationKind.MUTATION_KIND_PUT, { value: bytes(value) });
const del = () => mutation(MutationKind.MUTATION_KIND_DELETE);
const append = (value: string) => mutation(MutationKind.MUTATION_KIND_APPEND, { value: bytes(value) });
const add = (delta: bigint) => mutation(MutationKind.MUTATION_KIND_ADD, { delta });

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

describe("applyMutation", () => {
  test("PUT sets, DELETE removes (absent or not)", () => {
    expect(text(applyMutation(undefined, put("a")))).toBe("a");
    expect(text(applyMutation(bytes("old"), put("new")))).toBe("new");
    expect(applyMutation(bytes("x"), del())).toBeUndefined();
    expect(applyMutation(undefined, del())).toBeUndefined();
  });

  test("APPEND concatenates onto the current value, absent counting as empty", () => {
    expect(text(applyMutation(undefined, append("a")))).toBe("a");
    expect(text(applyMutation(bytes("ab"), append("cd")))).toBe("abcd");
    expect(text(applyMutation(bytes("ab"), append("")))).toBe("ab");
  });

  test("APPEND is not idempotent: applying twice shows up in the data", () => {
    const once = applyMutation(undefined, append("x"));
    expect(text(applyMutation(once, append("x")))).toBe("xx");
  });

  test("ADD treats absent and non-integers as 0", () => {
    expect(text(applyMutation(undefined, add(5n)))).toBe("5");
    expect(text(applyMutation(bytes("41"), add(1n)))).toBe("42");
    expect(text(applyMutation(bytes("-3"), add(-4n)))).toBe("-7");
    for (const junk of ["abc", "", "+5", " 5", "5 ", "1.5", "0x10", "--1", "9223372036854775808", "1".repeat(25)]) {
      expect(text(applyMutation(bytes(junk), add(7n)))).toBe("7");
    }
  });

  test("ADD wraps at 64 bits", () => {
    expect(text(applyMutation(bytes(INT64_MAX.toString()), add(1n)))).toBe(INT64_MIN.toString());
    expect(text(applyMutation(bytes(INT64_MIN.toString()), add(-1n)))).toBe(INT64_MAX.toString());
    expect(text(applyMutation(bytes(INT64_MAX.toString()), add(INT64_MAX)))).toBe("-2");
  });

  test("kinds that validation refuses are programmer errors here", () => {
    expect(() => applyMutation(undefined, mutation(MutationKind.MUTATION_KIND_UNSPECIFIED))).toThrow(AssertionError);
  });
});

describe("applyPartMutations", () => {
  const stored = new Map<string, Uint8Array>([["a", bytes("1234")]]);
  const read = (key: string): Uint8Array | undefined => stored.get(key);
  const on = (key: string, m: Mutation): Mutation => ({ ...m, key });

  test("returns each key's final value in first-touch order, later mutations seeing earlier ones", () => {
    const outcome = applyPartMutations([on("a", append("5")), on("b", put("x")), on("a", append("6")), on("b", del())], read, 10);
    expect(outcome.kind).toBe("applied");
    if (outcome.kind !== "applied") return;
    expect(outcome.writes.map(([key, value]) => [key, text(value)])).toEqual([
      ["a", "123456"],
      ["b", undefined],
    ]);
  });

  test("a value of exactly value_bytes_max is applied; one byte more rejects the whole part", () => {
    expect(applyPartMutations([on("a", append("123456"))], read, 10).kind).toBe("applied");
    const outcome = applyPartMutations([on("b", put("ok")), on("a", append("1234567"))], read, 10);
    expect(outcome).toEqual({ kind: "rejected", reason: expect.stringContaining("VALUE_TOO_LARGE: mutation 1 (MUTATION_KIND_APPEND)") });
    expect(outcome.kind === "rejected" && outcome.reason).toContain('key "a" 11 bytes, more than value_bytes_max 10');
  });

  test("the limit applies to the value after every step, not only the last", () => {
    // Grows past the limit, then a PUT shrinks it again: still rejected, whatever the final size.
    expect(applyPartMutations([on("a", append("1234567")), on("a", put("s"))], read, 10).kind).toBe("rejected");
  });

  test("an ADD whose decimal text exceeds a tiny value_bytes_max is rejected like an APPEND", () => {
    expect(applyPartMutations([on("n", add(12n))], read, 2).kind).toBe("applied");
    expect(applyPartMutations([on("n", add(123n))], read, 2).kind).toBe("rejected");
  });

  test("the same part on the same state gives the same outcome", () => {
    const part = [on("a", append("xxxxxxx")), on("c", add(1n))];
    expect(applyPartMutations(part, read, 10)).toEqual(applyPartMutations(part, read, 10));
  });
});

describe("int64 decimal encoding", () => {
  test("round-trips random and edge values", () => {
    let state = 0x1234_5678n;
    const values = [0n, 1n, -1n, INT64_MAX, INT64_MIN];
    for (let i = 0; i < 500; i++) {
      // 64-bit LCG (Knuth's MMIX constants), read as a signed value.
      state = BigInt.asUintN(64, state * 6364136223846793005n + 1442695040888963407n);
      values.push(BigInt.asIntN(64, state) >> BigInt(i % 64));
    }
    for (const value of values) expect(decodeInt64(encodeInt64(value))).toBe(value);
  });

  test("sums of random deltas match 64-bit wrapping arithmetic", () => {
    let current: Uint8Array | undefined;
    let expected = 0n;
    let state = 99n;
    for (let i = 0; i < 300; i++) {
      state = BigInt.asUintN(64, state * 6364136223846793005n + 1442695040888963407n);
      const delta = BigInt.asIntN(64, state);
      current = applyMutation(current, add(delta));
      expected = BigInt.asIntN(64, expected + delta);
      expect(text(current)).toBe(expected.toString());
    }
  });
});
