import { readWaitMs } from "./reads";

describe("readWaitMs", () => {
  test("no deadline: wait up to read_wait_ms_max", () => {
    expect(readWaitMs(Infinity, 10_000, 1_000)).toBe(10_000);
  });

  test("a near deadline wins, less a small margin so our message arrives first", () => {
    expect(readWaitMs(1_000 + 500, 10_000, 1_000)).toBe(450);
    expect(readWaitMs(new Date(1_000 + 100), 10_000, 1_000)).toBe(90);
  });

  test("a far deadline is capped by read_wait_ms_max", () => {
    expect(readWaitMs(1_000 + 60_000, 10_000, 1_000)).toBe(10_000);
  });

  test("a deadline already past means no wait", () => {
    expect(readWaitMs(500, 10_000, 1_000)).toBe(0);
  });
});
