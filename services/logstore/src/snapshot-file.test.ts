import { LpError, Status } from "@logplayer/common";
import { DEFAULT_DEDUPE_LIMITS, DedupeTable, type DedupeEntry } from "./dedupe-table";
import { decodeSnapshotFile, encodeSnapshotFile, type LogStoreSnapshot } from "./snapshot-file";

const LIMITS = { ...DEFAULT_DEDUPE_LIMITS, clientsMax: 6, seqsPerClientMax: 4, sessionIdleEntriesMax: 150n };

/** A deterministic stream of entries: registrations, appends (some repeated), anonymous ones. */
function entryAt(lsn: bigint): DedupeEntry {
  const n = Number(lsn);
  const clientId = `client-${n % 3}`;
  if (n % 97 === 0) return { kind: "registration", clientId };
  if (n % 5 === 0) return undefined;
  return { kind: "append", clientId, clientSeq: BigInt(Math.floor(n / 3)) };
}

function tableThrough(lsn: bigint): DedupeTable {
  const table = new DedupeTable(LIMITS);
  for (let at = 1n; at <= lsn; at++) table.applyEntry(at, entryAt(at));
  return table;
}

function snapshotOf(table: DedupeTable): LogStoreSnapshot {
  return {
    index: table.positionLsn,
    term: 3n,
    voters: [1, 2, 3],
    learners: [5],
    addresses: [{ id: 5, address: "e:5" }],
    clusterId: "c",
    trimLsn: 17n,
    dedupe: table.exportSnapshot(),
  };
}

describe("the LogStore snapshot", () => {
  it("a dedupe table loaded from a snapshot at LSN k, then fed k+1.., is the table fed everything", () => {
    for (const k of [1n, 9n, 33n, 120n, 121n, 122n, 123n, 124n]) {
      const loaded = new DedupeTable(LIMITS);
      loaded.loadSnapshot(decodeSnapshotFile(encodeSnapshotFile(snapshotOf(tableThrough(k))), "test").dedupe);
      for (let at = k + 1n; at <= 200n; at++) loaded.applyEntry(at, entryAt(at));
      expect(loaded.exportSnapshot()).toEqual(tableThrough(200n).exportSnapshot());
    }
  });

  it("round-trips every field", () => {
    const snapshot = snapshotOf(tableThrough(77n));
    expect(snapshot.dedupe.sessions.length).toBeGreaterThan(2);
    expect(decodeSnapshotFile(encodeSnapshotFile(snapshot), "test")).toEqual(snapshot);
  });

  it("refuses a cut, flipped, padded or foreign file with DATA_LOSS naming it", () => {
    const bytes = encodeSnapshotFile(snapshotOf(tableThrough(50n)));
    const flipped = Buffer.from(bytes);
    flipped[bytes.length - 3]! ^= 0x10;
    const versioned = Buffer.from(bytes);
    versioned.writeUInt32LE(2, 4);
    for (const [bad, reason] of [
      [bytes.subarray(0, bytes.length - 1), /cut or padded/],
      [Buffer.concat([bytes, Buffer.alloc(1)]), /cut or padded/],
      [flipped, /checksum/],
      [versioned, /format 2/],
      [Buffer.from("not a snapshot at all"), /not a LogStore snapshot/],
    ] as const) {
      const error: unknown = (() => {
        try {
          decodeSnapshotFile(bad, "/data/snapshot.bin");
        } catch (err: unknown) {
          return err;
        }
        return undefined;
      })();
      expect(LpError.is(error) && error.code).toBe(Status.DATA_LOSS);
      expect(String(error)).toMatch(reason);
      expect(String(error)).toMatch(/snapshot\.bin/);
    }
  });
});
