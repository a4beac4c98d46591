import { AssertionError, must } from "./assert";
import { CodedError, FailedPreconditionError, InvalidInputError } from "./coded-error";

describe("coded errors", () => {
  it("carry their kind and message, and are recognised by brand", () => {
    const invalid = new InvalidInputError("bad bytes");
    expect(invalid.kind).toBe("invalid-input");
    expect(invalid.name).toBe("InvalidInputError");
    expect(CodedError.is(invalid)).toBe(true);
    expect(new FailedPreconditionError("unknown hash").kind).toBe("failed-precondition");
  });

  it("are recognised without instanceof, as a copy of the module would make them", () => {
    const copy = Object.assign(new Error("from another realm"), { [Symbol.for("logplayer.CodedError")]: true });
    expect(CodedError.is(copy)).toBe(true);
    expect(CodedError.is(new Error("plain"))).toBe(false);
    expect(CodedError.is(null)).toBe(false);
  });
});

describe("must", () => {
  it("returns a present value, including falsy ones, and asserts on null or undefined", () => {
    expect(must(0, "zero")).toBe(0);
    expect(must("", "empty")).toBe("");
    expect(() => must(undefined, "missing entry")).toThrow(AssertionError);
    expect(() => must(null, "missing entry")).toThrow(/missing entry/);
  });
});
