import { CommitWindow } from "./commit-window";
import { ClientError } from "./errors";

describe("CommitWindow", () => {
  it("holds at most inflightMax slots and hands a released slot to the oldest waiter", async () => {
    const window = new CommitWindow(2, 10);
    const deadline = Date.now() + 10_000;
    const a = await window.acquire(deadline);
    const b = await window.acquire(deadline);
    const order: string[] = [];
    const c = window.acquire(deadline).then((release) => (order.push("c"), release));
    const d = window.acquire(deadline).then((release) => (order.push("d"), release));
    expect(window.inflight).toBe(2);
    expect(window.queued).toBe(2);
    a();
    const releaseC = await c;
    expect(order).toEqual(["c"]);
    expect(window.inflight).toBe(2);
    b();
    (await d)();
    releaseC();
    expect(window.inflight).toBe(0);
    expect(order).toEqual(["c", "d"]);
  });

  it("refuses beyond queuedMax with RESOURCE_EXHAUSTED and times out a waiter at its deadline", async () => {
    const window = new CommitWindow(1, 1);
    const held = await window.acquire(Date.now() + 10_000);
    const waiting = window.acquire(Date.now() + 20);
    await expect(window.acquire(Date.now() + 10_000)).rejects.toMatchObject({ codeName: "RESOURCE_EXHAUSTED" });
    const error: unknown = await waiting.catch((e: unknown) => e);
    expect(ClientError.is(error) && error.codeName).toBe("DEADLINE_EXCEEDED");
    expect(window.queued).toBe(0);
    held();
    expect(window.inflight).toBe(0);
  });

  it("a slot cannot be released twice", async () => {
    const window = new CommitWindow(1, 0);
    const release = await window.acquire(Date.now() + 1000);
    release();
    expect(() => release()).toThrow(/released twice/);
  });
});
