import { seededRandom } from "@logplayer/base";
import { SimDisk } from "./sim-segment-files";

const bytes = (...values: number[]): Buffer => Buffer.from(values);

describe("SimDisk", () => {
  it("keeps completed writes, loses the others, and tears only the last one in flight", async () => {
    const disk = new SimDisk({ random: () => 0.5, completion: "manual" });
    const files = disk.mount();
    const opening = files.open("a", "create");
    disk.completeNext();
    const file = await opening;
    const syncing = files.syncDirectory();
    disk.completeNext();
    await syncing;
    const first = file.writev([bytes(1, 2), bytes(3)], 0);
    disk.completeNext();
    expect(await first).toBe(3);
    void file.writev([bytes(4, 5, 6, 7)], 3);
    void file.writev([bytes(8, 9, 10, 11)], 7);
    expect(await files.readSync("a", 0, 11)).toEqual(bytes(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
    disk.crash();
    // The first unsynced write is gone; half of the last one (0.5 * 5 rounded down) landed after the hole it left.
    expect(disk.durableFiles().get("a")).toEqual(bytes(1, 2, 3, 0, 0, 0, 0, 8, 9));
    expect(disk.mount().readSync("a", 0, 9)).toEqual(bytes(1, 2, 3, 0, 0, 0, 0, 8, 9));
  });

  it("makes creations and deletions durable only at syncDirectory, and a truncation only at datasync", async () => {
    const disk = new SimDisk({ random: seededRandom(1), completion: "immediate" });
    const files = disk.mount();
    const kept = await files.open("kept", "create");
    await kept.writev([bytes(1, 2, 3, 4)], 0);
    await files.syncDirectory();
    await files.open("lost", "create");
    await files.unlink("kept");
    expect(await files.list()).toEqual(["lost"]);
    disk.crash();
    const restarted = disk.mount();
    expect(await restarted.list()).toEqual(["kept"]);
    const file = await restarted.open("kept", "existing");
    await file.truncate(1);
    disk.crash();
    expect(disk.durableFiles().get("kept")).toEqual(bytes(1, 2, 3, 4));
    const again = await disk.mount().open("kept", "existing");
    await again.truncate(1);
    await again.datasync();
    disk.crash();
    expect(disk.durableFiles().get("kept")).toEqual(bytes(1));
  });

  it("never completes an operation of a process that crashed", async () => {
    const disk = new SimDisk({ random: seededRandom(2), completion: "manual" });
    const files = disk.mount();
    let settled = false;
    void files.list().finally(() => (settled = true));
    disk.crash();
    expect(disk.completeNext()).toBe(false);
    void files.list().finally(() => (settled = true));
    expect(disk.pendingOperations).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    expect(() => files.readSync("a", 0, 1)).toThrow(/crashed process/);
  });

  it("with a scheduler, completes each operation when the scheduler says, and a crashed process's never", async () => {
    const scheduled: (() => void)[] = [];
    const disk = new SimDisk({ random: () => 0, completion: (complete) => scheduled.push(complete) });
    const files = disk.mount();
    const opening = files.open("a", "create");
    expect(scheduled).toHaveLength(1);
    scheduled.shift()?.();
    const file = await opening;
    const syncing = files.syncDirectory();
    scheduled.shift()?.();
    await syncing;
    let written = false;
    void file.writev([bytes(1, 2)], 0).then(() => (written = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(written).toBe(false);
    scheduled.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(written).toBe(true);
    // A write scheduled before a crash and completed after it leaves nothing durable and never resolves.
    let lateWritten = false;
    void file.writev([bytes(3, 4)], 2).then(() => (lateWritten = true));
    disk.crash();
    scheduled.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(lateWritten).toBe(false);
    expect(disk.durableFiles().get("a")).toEqual(bytes(1, 2));
  });
});
