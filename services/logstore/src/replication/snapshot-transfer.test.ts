import { LpError, Status } from "@logplayer/common";
import type { SnapshotChunk } from "@logplayer/proto";
import { encodeSnapshotFile } from "../snapshot-file";
import { SnapshotAssembler, type SnapshotTransferLimits } from "./snapshot-transfer";

const IDENTITY = { clusterId: "c1", replicaId: 3, peersHash: "h" };
const VOTERS = [1, 2, 3];
const LIMITS: SnapshotTransferLimits = { chunkBytesMax: 16, snapshotBytesMax: 4096, transferTimeoutMs: 1000 };
const BYTES: Buffer = encodeSnapshotFile({
  index: 40n,
  term: 2n,
  voters: VOTERS,
  learners: [4],
  addresses: [{ id: 4, address: "d:4" }],
  clusterId: "c1",
  trimLsn: 0n,
  dedupe: { positionLsn: 40n, sessions: [{ clientId: "a", sessionLsn: 3n, lastUsedLsn: 39n, evictedSeqMax: 0n, seqs: [[1n, 39n]] }] },
});

// Several chunks of 16 bytes.
function chunks(bytes: Buffer = BYTES, size = LIMITS.chunkBytesMax, change: Partial<SnapshotChunk> = {}): SnapshotChunk[] {
  const result: SnapshotChunk[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) {
    result.push({
      clusterId: "c1",
      peersHash: "h",
      from: 1,
      to: 3,
      term: 2n,
      snapshotIndex: 40n,
      snapshotTerm: 2n,
      totalBytes: BigInt(bytes.length),
      offset: BigInt(offset),
      data: bytes.subarray(offset, offset + size),
      ...change,
    });
  }
  return result;
}

function assemble(stream: SnapshotChunk[], senderName: string | null = null): unknown {
  const assembler = new SnapshotAssembler(IDENTITY, LIMITS, senderName);
  try {
    for (const chunk of stream) assembler.add(chunk);
    return assembler.finish();
  } catch (err: unknown) {
    return err;
  }
}

const codeOf = (result: unknown): Status | undefined => (LpError.is(result) ? result.code : undefined);

describe("InstallSnapshot: assembling a stream", () => {
  it("assembles a whole stream into the snapshot it carries", () => {
    const result = assemble(chunks(), "1");
    expect(result).toMatchObject({ from: 1, term: 2n, meta: { index: 40n, term: 2n, voters: VOTERS } });
    expect((result as { bytes: Buffer }).bytes.equals(BYTES)).toBe(true);
  });

  it.each([
    ["another cluster", chunks(BYTES, 16, { clusterId: "c2" }), Status.FAILED_PRECONDITION],
    ["not for this replica", chunks(BYTES, 16, { to: 2 }), Status.INVALID_ARGUMENT],
    ["from this replica itself", chunks(BYTES, 16, { from: 3 }), Status.INVALID_ARGUMENT],
    ["a snapshot term above the leader's", chunks(BYTES, 16, { snapshotTerm: 3n }), Status.INVALID_ARGUMENT],
    ["a total over snapshotBytesMax", chunks(BYTES, 16, { totalBytes: 4097n }), Status.RESOURCE_EXHAUSTED],
    ["a chunk over chunkBytesMax", chunks(BYTES, 17), Status.RESOURCE_EXHAUSTED],
    ["a skipped chunk", chunks().filter((_chunk, i) => i !== 1), Status.INVALID_ARGUMENT],
    ["a cut stream", chunks().slice(0, -1), Status.INVALID_ARGUMENT],
    ["an empty stream", [], Status.INVALID_ARGUMENT],
    ["a header that changes", chunks().map((chunk, i) => (i === 1 ? { ...chunk, term: 3n } : chunk)), Status.INVALID_ARGUMENT],
    ["contents that do not match the header", chunks(BYTES, 16, { snapshotIndex: 41n }), Status.INVALID_ARGUMENT],
    ["damaged contents", chunks(Buffer.from(BYTES).fill(7, 30, 31)), Status.INVALID_ARGUMENT],
  ])("refuses %s", (_name, stream, code) => {
    expect(codeOf(assemble(stream))).toBe(code);
  });

  it("refuses a stream whose sender is not the certificate's replica", () => {
    expect(codeOf(assemble(chunks(), "2"))).toBe(Status.PERMISSION_DENIED);
  });
});
