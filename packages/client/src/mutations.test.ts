import { MutationKind } from "@logplayer/proto";
import { InvalidArgumentError } from "./errors";
import { mutation } from "./mutations";

describe("mutation builders", () => {
  it("put and append carry the value as bytes (strings as UTF-8)", () => {
    expect(mutation.put("k", "héllo")).toEqual({
      kind: MutationKind.MUTATION_KIND_PUT,
      key: "k",
      value: Buffer.from("héllo", "utf8"),
      delta: 0n,
    });
    const bytes = new Uint8Array([0, 255, 7]);
    const appended = mutation.append("k", bytes);
    expect(appended.kind).toBe(MutationKind.MUTATION_KIND_APPEND);
    expect([...appended.value]).toEqual([0, 255, 7]);
    bytes[0] = 9; // the builder copied, so later changes to the caller's array do not leak in
    expect(appended.value[0]).toBe(0);
  });

  it("delete has no value and no delta", () => {
    expect(mutation.delete("gone")).toEqual({ kind: MutationKind.MUTATION_KIND_DELETE, key: "gone", value: Buffer.alloc(0), delta: 0n });
  });

  it("add takes a number or a bigint as a signed 64-bit delta", () => {
    expect(mutation.add("n", 5).delta).toBe(5n);
    expect(mutation.add("n", -3n).delta).toBe(-3n);
    expect(mutation.add("n", 2n ** 63n - 1n).delta).toBe(2n ** 63n - 1n);
    expect(mutation.add("n", 5).kind).toBe(MutationKind.MUTATION_KIND_ADD);
  });

  it("add refuses deltas that do not fit", () => {
    expect(() => mutation.add("n", 1.5)).toThrow(InvalidArgumentError);
    expect(() => mutation.add("n", Number.MAX_SAFE_INTEGER + 2)).toThrow(/safe integer/);
    expect(() => mutation.add("n", 2n ** 63n)).toThrow(/64-bit/);
    expect(() => mutation.add("n", -(2n ** 63n) - 1n)).toThrow(InvalidArgumentError);
  });
});
