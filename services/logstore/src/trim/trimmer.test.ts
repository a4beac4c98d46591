import { silentLogger } from "@logplayer/common";
import { NO_RAFT_FLOOR, NO_RETENTION, type SegmentSummary } from "@logplayer/delivery";
import { Trimmer, type LogCompactor, type TrimPointStore } from "./trimmer";

/** A WAL of segments of 10 entries from LSN 1, deleting as asked. */
class FakeCompactor implements LogCompactor {
  lastLsn: bigint;
  firstLsn = 1n;
  readonly compactions: bigint[] = [];

  constructor(lastLsn: bigint) {
    this.lastLsn = lastLsn;
  }

  async segments(): Promise<SegmentSummary[]> {
    const list: SegmentSummary[] = [];
    for (let first = 1n; first <= this.lastLsn; first += 10n) {
      const last = first + 9n < this.lastLsn ? first + 9n : this.lastLsn;
      if (last >= this.firstLsn) list.push({ firstLsn: first, lastLsn: last, bytes: 100, lastWriteMs: 0 });
    }
    return list;
  }

  async compactTo(lsn: bigint): Promise<void> {
    this.compactions.push(lsn);
    this.firstLsn = lsn + 1n;
  }
}

class MemoryStore implements TrimPointStore {
  saved: bigint[] = [];
  async load(): Promise<bigint> {
    return this.saved.at(-1) ?? 0n;
  }
  async save(trimPoint: bigint): Promise<void> {
    this.saved.push(trimPoint);
  }
}

const logger = silentLogger();

async function open(compactor: FakeCompactor, store: MemoryStore, commitLsn: () => bigint, raftFloor = NO_RAFT_FLOOR): Promise<Trimmer> {
  return Trimmer.open({
    compactor,
    store,
    retention: NO_RETENTION,
    shardCount: 2,
    commitLsn,
    raftFloor: () => raftFloor,
    nowMs: () => 0,
    logger,
  });
}

describe("Trimmer", () => {
  it("persists a raised point before deleting, and deletes only whole segments at or below it", async () => {
    const compactor = new FakeCompactor(45n);
    const store = new MemoryStore();
    const trimmer = await open(compactor, store, () => 45n);
    expect(await trimmer.report({ trimPoint: 25n, shardCount: 2 })).toEqual({ kind: "accepted", trimPoint: 25n, firstLsn: 21n });
    expect(store.saved).toEqual([25n]);
    expect(compactor.compactions).toEqual([20n]);
    expect(trimmer.walBytes).toBe(300);
  });

  it("refuses a point above the commit LSN and keeps the old one", async () => {
    const compactor = new FakeCompactor(45n);
    const store = new MemoryStore();
    const trimmer = await open(compactor, store, () => 30n);
    expect((await trimmer.report({ trimPoint: 31n, shardCount: 2 })).kind).toBe("refused");
    expect(trimmer.trimPoint).toBe(0n);
    expect(store.saved).toEqual([]);
    expect(compactor.compactions).toEqual([]);
  });

  it("never moves the point back, and starts from the persisted one", async () => {
    const compactor = new FakeCompactor(45n);
    const store = new MemoryStore();
    const first = await open(compactor, store, () => 45n);
    await first.report({ trimPoint: 30n, shardCount: 2 });
    expect(await first.report({ trimPoint: 12n, shardCount: 2 })).toEqual({ kind: "accepted", trimPoint: 30n, firstLsn: 31n });
    expect(store.saved).toEqual([30n]);
    const again = await open(compactor, store, () => 45n);
    expect(again.trimPoint).toBe(30n);
  });

  it("keeps what a Raft peer may still need, whatever the trim point", async () => {
    const compactor = new FakeCompactor(45n);
    const trimmer = await open(compactor, new MemoryStore(), () => 45n, 15n);
    expect(await trimmer.report({ trimPoint: 40n, shardCount: 2 })).toEqual({ kind: "accepted", trimPoint: 40n, firstLsn: 11n });
    expect(compactor.compactions).toEqual([10n]);
  });
});
