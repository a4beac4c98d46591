import { CommitWindow } from "./commit-window";
import { ClientError } from "./errors";

describe("CommitWindow", () => {
  it("hands out consecutive seqs, at most inflightMax at once, the oldest waiter first", async () => {
    const window = new CommitWindow(2, 10);
    const deadline = Date.now() + 10_000;
    const a = await window.acquire(deadline);
    const b = await window.acquire(deadline);
    expect([a.seq, b.seq]).toEqual([1n, 2n]);
    const order: string[] = [];
    const c = window.acquire(deadline).then((lease) => {
      order.push("c");
      return lease;
    });
    const d = window.acquire(deadline).then((lease) => {
      order.push("d");
      return lease;
    });
    expect(window.inflight).toBe(2);
    expect(window.queued).toBe(2);
    a.release();
    const leaseC = await c;
    expect(order).toEqual(["c"]);
    expect(leaseC.seq).toBe(3n);
    expect(window.inflight).toBe(2);
    b.release();
    const leaseD = await d;
    expect(leaseD.seq).toBe(4n);
    leaseD.release();
    leaseC.release();
    expect(window.inflight).toBe(0);
    expect(order).toEqual(["c", "d"]);
  });

  it("a slow commit holds back new seqs: the span from the oldest held seq never exceeds inflightMax", async () => {
    const window = new CommitWindow(4, 100);
    const deadline = Date.now() + 10_000;
    const slow = await window.acquire(deadline);
    // Fast commits come and go while the slow one (seq 1) keeps its seq.
    for (let i = 0; i < 3; i++) (await window.acquire(deadline)).release();
    expect(window.inflight).toBe(1);
    expect(window.span).toBe(4);
    let granted = false;
    const blocked = window.acquire(deadline).then((lease) => {
      granted = true;
      return lease;
    });
    await Promise.resolve();
    expect(granted).toBe(false);
    slow.release();
    const lease = await blocked;
    expect(lease.seq).toBe(5n);
    expect(window.span).toBe(1);
    lease.release();
  });

  it("refuses beyond queuedMax with RESOURCE_EXHAUSTED and times out a waiter at its deadline", async () => {
    const window = new CommitWindow(1, 1);
    const held = await window.acquire(Date.now() + 10_000);
    const waiting = window.acquire(Date.now() + 20);
    await expect(window.acquire(Date.now() + 10_000)).rejects.toMatchObject({ codeName: "RESOURCE_EXHAUSTED" });
    const error: unknown = await waiting.catch((e: unknown) => e);
    expect(ClientError.is(error) && error.codeName).toBe("DEADLINE_EXCEEDED");
    expect(window.queued).toBe(0);
    held.release();
    expect(window.inflight).toBe(0);
  });

  it("a seq cannot be released twice", async () => {
    const window = new CommitWindow(1, 0);
    const lease = await window.acquire(Date.now() + 1000);
    lease.release();
    expect(() => lease.release()).toThrow(/released twice/);
  });
});
