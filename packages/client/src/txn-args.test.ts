import { MutationKind } from "@logplayer/proto";
import { InvalidArgumentError } from "./errors";
import { parseDeltaArg, parseTxnOp, parseTxnOps, parseValueArg } from "./txn-args";

describe("txn argument parser", () => {
  it("parses every operation", () => {
    const ops = parseTxnOps(["put:a=1", "append:b=x", "add:c=5", "delete:d", "add:e=-7"]);
    expect(ops.map((m) => [m.kind, m.key, m.value.toString(), m.delta])).toEqual([
      [MutationKind.MUTATION_KIND_PUT, "a", "1", 0n],
      [MutationKind.MUTATION_KIND_APPEND, "b", "x", 0n],
      [MutationKind.MUTATION_KIND_ADD, "c", "", 5n],
      [MutationKind.MUTATION_KIND_DELETE, "d", "", 0n],
      [MutationKind.MUTATION_KIND_ADD, "e", "", -7n],
    ]);
  });

  it("splits at the first ':' and the first '=': keys may hold ':', values may hold '=' and ':'", () => {
    const put = parseTxnOp("put:user:42=a=b:c");
    expect(put.key).toBe("user:42");
    expect(put.value.toString()).toBe("a=b:c");
    expect(parseTxnOp("put:k=").value.length).toBe(0);
    expect(parseTxnOp("delete:x:y=z").key).toBe("x:y=z");
  });

  it("decodes hex values with the hex option", () => {
    expect([...parseTxnOp("put:k=00ff10", 0, { hex: true }).value]).toEqual([0, 255, 16]);
    expect(() => parseTxnOp("put:k=0g", 0, { hex: true })).toThrow(/not hex/);
    expect(() => parseValueArg("abc", true)).toThrow(InvalidArgumentError);
    expect(parseValueArg("abc", false).toString()).toBe("abc");
  });

  it.each([
    ["put", /expected put:KEY=VALUE/],
    ["put:a", /expected put:KEY=VALUE/],
    ["append:a", /expected append:KEY=VALUE/],
    ["add:a", /expected add:KEY=N/],
    ["add:a=x", /not a decimal integer/],
    ["add:a=1.5", /not a decimal integer/],
    ["add:a=9223372036854775808", /64 bits/],
    ["upsert:a=1", /unknown operation "upsert"/],
    ["put:=1", /invalid key: empty/],
    ["delete:", /invalid key: empty/],
    ["put:a\tb=1", /control character/],
  ])("rejects %j", (arg, problem) => {
    expect(() => parseTxnOp(arg)).toThrow(InvalidArgumentError);
    expect(() => parseTxnOp(arg)).toThrow(problem);
  });

  it("names the failing argument's position", () => {
    expect(() => parseTxnOps(["put:a=1", "bogus"])).toThrow(/txn argument 2 \("bogus"\)/);
  });

  it("refuses an empty transaction", () => {
    expect(() => parseTxnOps([])).toThrow(/at least one operation/);
  });

  it("parses deltas at the 64-bit edges", () => {
    expect(parseDeltaArg("+9223372036854775807")).toBe(2n ** 63n - 1n);
    expect(parseDeltaArg("-9223372036854775808")).toBe(-(2n ** 63n));
  });
});
