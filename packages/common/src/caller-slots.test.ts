import { CallerSlots } from "./caller-slots";

describe("CallerSlots", () => {
  it("bounds each caller separately, frees a slot once per release, and forgets callers holding none", () => {
    const slots = new CallerSlots(2);
    const a1 = slots.tryAcquire("a")!;
    const a2 = slots.tryAcquire("a")!;
    expect(slots.tryAcquire("a")).toBeNull();
    expect(slots.tryAcquire("b")).not.toBeNull();
    a1();
    a1();
    expect(slots.heldBy("a")).toBe(1);
    expect(slots.tryAcquire("a")).not.toBeNull();
    a2();
    expect(slots.heldBy("a")).toBe(1);
    expect(() => new CallerSlots(0)).toThrow(/positive/);
  });
});
