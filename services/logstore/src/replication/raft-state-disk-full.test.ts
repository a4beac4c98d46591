import type { HardState } from "@logplayer/raft";
import { RaftStateFileWriter, type RaftStateWrite } from "./node-ports";
import type { WalStorage } from "./wal-storage";

// raft-state.json shares the WAL's disk: when it is full, the hard state is written again once there is
// room (the driver waits for it), instead of the write's failure stopping the replica.

const identity = { clusterId: "c", replicaId: 1, peersHash: "h" };
const state: HardState = { term: 3n, vote: 2, commit: 0n };
const storage = { setHardState: () => {} } as unknown as WalStorage;

function failing(failures: readonly (string | undefined)[]): { write: RaftStateWrite; attempts: () => number } {
  let attempts = 0;
  const write: RaftStateWrite = async () => {
    const code = failures[attempts++];
    if (code !== undefined) throw Object.assign(new Error(`${code}: simulated`), { code });
  };
  return { write, attempts: () => attempts };
}

test("ENOSPC and EDQUOT: retried with growing waits until the write succeeds, then done() without an error", async () => {
  const { write, attempts } = failing(["ENOSPC", "EDQUOT", "ENOSPC"]);
  const waits: number[] = [];
  const writer = new RaftStateFileWriter("dir", identity, storage, write, async (ms) => {
    waits.push(ms);
  });
  const error = await new Promise<Error | undefined>((resolve) => writer.save(state, true, resolve));
  expect(error).toBeUndefined();
  expect(attempts()).toBe(4);
  expect(waits).toEqual([10, 20, 40]);
});

test("any other failure is reported to the driver at once (which treats it as fatal)", async () => {
  const { write, attempts } = failing(["EIO"]);
  const writer = new RaftStateFileWriter("dir", identity, storage, write, async () => {});
  const error = await new Promise<Error | undefined>((resolve) => writer.save(state, true, resolve));
  expect(error?.message).toMatch(/EIO/);
  expect(attempts()).toBe(1);
});
