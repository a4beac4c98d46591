import { walTimerClock } from "./node-ports";

describe("walTimerClock", () => {
  // Where soon() puts its run relative to a microtask queued just after it: before it = as soon as the
  // current callback is done, after it = at the end of the event loop's turn.
  async function runOrder(unackedCount: number): Promise<string[]> {
    const order: string[] = [];
    const clock = walTimerClock({ unackedCount });
    await new Promise<void>((resolve) => {
      clock.soon(() => {
        order.push("run");
        resolve();
      });
      queueMicrotask(() => order.push("microtask queued after"));
    });
    return order;
  }

  it("runs soon() as soon as the current callback is done while the WAL is idle (nothing to batch behind)", async () => {
    expect(await runOrder(0)).toEqual(["run", "microtask queued after"]);
  });

  it("runs soon() at the end of the turn while the WAL writes, so the turn's inputs share a Ready and a write", async () => {
    expect(await runOrder(3)).toEqual(["microtask queued after", "run"]);
  });
});
