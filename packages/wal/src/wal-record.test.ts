import { LogEntry } from "@logplayer/proto";
import { decodeRecord, encodeEntryPayload, encodeRecord, RECORD_HEADER_BYTES } from "./wal-record";
import { recordFor, seededRandom, testEntry } from "./test-entries";

describe("WAL record framing", () => {
  const random = seededRandom(1);

  it("round-trips entries of many sizes", () => {
    for (const size of [0, 1, 100, 5000, 70_000]) {
      const entry = testEntry(BigInt(size + 1), random, size, 3n);
      const record = recordFor(entry);
      const result = decodeRecord(record, 0);
      expect(result.kind).toBe("record");
      if (result.kind !== "record") return;
      expect(result.recordBytes).toBe(record.length);
      expect(LogEntry.toJSON(result.entry)).toEqual(LogEntry.toJSON(entry));
    }
  });

  it("decodes a record at an offset inside a larger buffer", () => {
    const first = recordFor(testEntry(1n, random));
    const second = recordFor(testEntry(2n, random));
    const result = decodeRecord(Buffer.concat([first, second]), first.length);
    expect(result.kind === "record" && result.entry.lsn).toBe(2n);
  });

  it("catches every single flipped byte, in the header and in the payload", () => {
    const record = recordFor(testEntry(7n, random, 30));
    for (let i = 0; i < record.length; i++) {
      const damaged = Buffer.from(record);
      damaged[i] = damaged[i]! ^ 0x01;
      const result = decodeRecord(damaged, 0);
      expect(result.kind).not.toBe("record");
    }
  });

  it("reports a partial header or payload as incomplete", () => {
    const record = recordFor(testEntry(9n, random, 30));
    expect(decodeRecord(record.subarray(0, RECORD_HEADER_BYTES - 1), 0).kind).toBe("incomplete");
    const partial = decodeRecord(record.subarray(0, record.length - 1), 0);
    expect(partial).toMatchObject({ kind: "incomplete", lsn: 9n });
  });

  it("treats zeros as invalid, not as a record", () => {
    expect(decodeRecord(Buffer.alloc(100), 0)).toMatchObject({ kind: "invalid", reason: expect.stringMatching(/bad magic/) });
  });

  it("refuses to frame an entry without an LSN or term", () => {
    const entry = testEntry(1n, random);
    expect(() => encodeRecord({ ...entry, lsn: 0n }, encodeEntryPayload({ ...entry, lsn: 0n }))).toThrow(/LSN must be >= 1/);
    expect(() => encodeRecord({ ...entry, term: 0n }, encodeEntryPayload({ ...entry, term: 0n }))).toThrow(/term must be >= 1/);
  });

  it("rejects a payload whose LSN disagrees with the header", () => {
    const entry = testEntry(5n, random);
    // A record framed for LSN 5 around the payload of LSN 6: the checksum is right, the pair check is not.
    const record = encodeRecord(entry, encodeEntryPayload({ ...entry, lsn: 6n }));
    expect(decodeRecord(record, 0)).toMatchObject({ kind: "invalid", reason: expect.stringMatching(/disagrees with header/) });
  });
});
