// The hand-written codec must produce exactly ts-proto's bytes and decode to
// exactly ts-proto's objects, on random messages, with unknown fields mixed
// in, and on truncated input (both fail, or both give the same message).
import { InvalidInputError } from "@logplayer/base";
import fc from "fast-check";
import { AppendRequest, AppendStreamResponse, ReadResponse } from "../gen/logplayer/v1/logstore";
import { DeliverRequest, DeliverResponse, type Part } from "../gen/logplayer/v1/shard";
import { LogEntry, type Mutation, Transaction } from "../gen/logplayer/v1/types";
import {
  decodeAppendRequest,
  decodeAppendStreamResponse,
  decodeDeliverRequest,
  decodeDeliverResponse,
  decodeLogEntry,
  decodeReadResponse,
  encodeAppendRequest,
  encodeAppendStreamResponse,
  encodeDeliverRequest,
  encodeDeliverResponse,
  encodeLogEntry,
  encodeReadResponse,
  transactionEncodedBytes,
} from "./codec";

const RUNS = 300;

const uint64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 300n }), fc.bigInt({ min: 0n, max: 2n ** 53n }), fc.bigUintN(64));
const sint64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: -300n, max: 300n }), fc.bigIntN(64));
const text = fc.oneof(fc.constant(""), fc.string({ maxLength: 40 }), fc.fullUnicodeString({ maxLength: 20 }));
const bytes = fc.oneof(
  fc.constant(Buffer.alloc(0)),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
);
const kind = fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }));

const mutation: fc.Arbitrary<Mutation> = fc.record({ kind, key: text, value: bytes, delta: sint64 });
const transaction: fc.Arbitrary<Transaction> = fc.record({ mutations: fc.array(mutation, { maxLength: 6 }) });
const logEntry: fc.Arbitrary<LogEntry> = fc.record({
  lsn: uint64,
  term: uint64,
  txn: fc.option(transaction, { nil: undefined }),
  commitTimeNs: uint64,
  clientId: text,
  clientSeq: uint64,
  configChange: fc.option(bytes, { nil: undefined }),
});
const appendRequest: fc.Arbitrary<AppendRequest> = fc.record({
  txn: fc.option(transaction, { nil: undefined }),
  commitTimeNs: uint64,
  clientId: text,
  clientSeq: uint64,
  sessionLsn: uint64,
});
const readResponse: fc.Arbitrary<ReadResponse> = fc.record({
  entries: fc.array(logEntry, { maxLength: 4 }),
  commitLsn: uint64,
  leaderAddress: fc.string(),
  fromLeader: fc.boolean(),
});
const part: fc.Arbitrary<Part> = fc.record({
  lsn: uint64,
  prevLsn: uint64,
  mutations: fc.array(mutation, { maxLength: 5 }),
  commitTimeNs: uint64,
  dispatchTimeNs: uint64,
});
const deliverRequest: fc.Arbitrary<DeliverRequest> = fc.oneof(
  fc.constant({}),
  fc.record({
    body: fc.record({
      $case: fc.constant("batch" as const),
      value: fc.record({ parts: fc.array(part, { maxLength: 4 }), commitLsn: uint64 }),
    }),
  }),
  fc.record({
    body: fc.record({
      $case: fc.constant("hello" as const),
      value: fc.record({
        protocolVersion: fc.nat(),
        clusterId: text,
        shardMap: fc.option(fc.record({ shardCount: fc.nat(), hash: text }), { nil: undefined }),
        shardId: fc.nat(),
        playerId: text,
        commitLsn: uint64,
        logFirstLsn: uint64,
        limits: fc.option(fc.record({ entryBytesMax: fc.nat(), mutationsMax: fc.nat(), keyBytesMax: fc.nat(), valueBytesMax: fc.nat() }), {
          nil: undefined,
        }),
      }),
    }),
  }),
);

const uint32 = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
const appendStreamResponse: fc.Arbitrary<AppendStreamResponse> = fc.record({
  answers: fc.array(
    fc.record({
      clientSeq: uint64,
      lsn: uint64,
      duplicate: fc.boolean(),
      errorCode: uint32,
      errorMessage: text,
      leaderAddress: text,
      errorReason: text,
    }),
    { maxLength: 4 },
  ),
});
const deliverResponse: fc.Arbitrary<DeliverResponse> = fc.oneof(
  fc.constant({}),
  fc.record({ body: fc.record({ $case: fc.constant("ack" as const), value: fc.record({ appliedLsn: uint64 }) }) }),
  fc.record({
    body: fc.record({ $case: fc.constant("gap" as const), value: fc.record({ appliedLsn: uint64, lsn: uint64, prevLsn: uint64 }) }),
  }),
  fc.record({ body: fc.record({ $case: fc.constant("hello" as const), value: fc.record({ shardId: uint32, appliedLsn: uint64 }) }) }),
);

/** Unknown fields (numbers 10..15, one-byte tags, every wire type) to splice between known ones. */
const unknownField = fc.oneof(
  fc.tuple(fc.integer({ min: 10, max: 15 }), fc.nat()).map(([n, v]) => Buffer.from([(n << 3) | 0, v & 0x7f])),
  fc.tuple(fc.integer({ min: 10, max: 15 }), fc.uint8Array({ maxLength: 5 })).map(([n, b]) => Buffer.from([(n << 3) | 2, b.length, ...b])),
  fc.integer({ min: 10, max: 15 }).map((n) => Buffer.from([(n << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8])),
  fc.integer({ min: 10, max: 15 }).map((n) => Buffer.from([(n << 3) | 5, 1, 2, 3, 4])),
);

interface Codec<T> {
  name: string;
  arbitrary: fc.Arbitrary<T>;
  fast: { encode(m: T): Buffer; decode(b: Uint8Array): T };
  generated: { encode(m: T): Buffer; decode(b: Uint8Array): T };
}

function generated<T>(fns: { encode(m: T): { finish(): Uint8Array }; decode(b: Uint8Array): T }): Codec<T>["generated"] {
  return { encode: (m) => Buffer.from(fns.encode(m).finish()), decode: (b) => fns.decode(b) };
}

const codecs = [
  { name: "LogEntry", arbitrary: logEntry, fast: { encode: encodeLogEntry, decode: decodeLogEntry }, generated: generated(LogEntry) },
  {
    name: "AppendRequest",
    arbitrary: appendRequest,
    fast: { encode: encodeAppendRequest, decode: decodeAppendRequest },
    generated: generated(AppendRequest),
  },
  {
    name: "ReadResponse",
    arbitrary: readResponse,
    fast: { encode: encodeReadResponse, decode: decodeReadResponse },
    generated: generated(ReadResponse),
  },
  {
    name: "DeliverRequest",
    arbitrary: deliverRequest,
    fast: { encode: encodeDeliverRequest, decode: decodeDeliverRequest },
    generated: generated(DeliverRequest),
  },
  {
    name: "AppendStreamResponse",
    arbitrary: appendStreamResponse,
    fast: { encode: encodeAppendStreamResponse, decode: decodeAppendStreamResponse },
    generated: generated(AppendStreamResponse),
  },
  {
    name: "DeliverResponse",
    arbitrary: deliverResponse,
    fast: { encode: encodeDeliverResponse, decode: decodeDeliverResponse },
    generated: generated(DeliverResponse),
  },
] as Codec<unknown>[];

function outcome(decode: () => unknown): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: decode() };
  } catch {
    return { ok: false };
  }
}

describe.each(codecs)("$name codec", ({ arbitrary, fast, generated }) => {
  test("encodes to exactly the generated code's bytes", () => {
    fc.assert(
      fc.property(arbitrary, (message) => {
        expect(fast.encode(message)).toEqual(generated.encode(message));
      }),
      { numRuns: RUNS },
    );
  });

  test("decodes to exactly the generated code's message, unknown fields skipped", () => {
    fc.assert(
      fc.property(arbitrary, fc.array(unknownField, { maxLength: 3 }), (message, unknown) => {
        const encoded = Buffer.concat([...unknown, generated.encode(message), ...unknown]);
        expect(fast.decode(encoded)).toEqual(generated.decode(encoded));
      }),
      { numRuns: RUNS },
    );
  });

  test("truncated input: both decoders fail, or both give the same message", () => {
    fc.assert(
      fc.property(arbitrary, fc.nat(), (message, cut) => {
        const encoded = generated.encode(message);
        fc.pre(encoded.length > 0);
        const truncated = encoded.subarray(0, cut % encoded.length);
        const fastResult = outcome(() => fast.decode(truncated));
        const generatedResult = outcome(() => generated.decode(truncated));
        expect(fastResult.ok).toBe(generatedResult.ok);
        if (fastResult.ok && generatedResult.ok) expect(fastResult.value).toEqual(generatedResult.value);
      }),
      { numRuns: RUNS },
    );
  });

  test("garbage bytes throw InvalidInputError (INVALID_ARGUMENT at a service) or decode; they never hang", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
        const result = outcome(() => fast.decode(garbage));
        if (!result.ok) expect(() => fast.decode(garbage)).toThrow(InvalidInputError);
      }),
      { numRuns: RUNS },
    );
  });
});

test("a malformed hello (left to the generated decoder) throws InvalidInputError too", () => {
  // Found by the garbage-bytes property (seed 614161254): field 1, length 1, then a fixed32 tag with no bytes.
  const hello = Uint8Array.from([10, 1, 5]);
  expect(() => decodeDeliverRequest(hello)).toThrow(InvalidInputError);
  expect(() => decodeDeliverResponse(hello)).toThrow(InvalidInputError);
});

test("transactionEncodedBytes is the generated encoding's length", () => {
  fc.assert(
    fc.property(transaction, (txn) => {
      expect(transactionEncodedBytes(txn)).toBe(Transaction.encode(txn).finish().length);
    }),
    { numRuns: RUNS },
  );
});

test("a uint64 out of range is refused, as by the generated code", () => {
  const entry: LogEntry = { lsn: 2n ** 64n, term: 1n, txn: undefined, commitTimeNs: 0n, clientId: "", clientSeq: 0n };
  expect(() => encodeLogEntry(entry)).toThrow(/uint64 too large/);
  expect(() => encodeLogEntry(entry)).toThrow(InvalidInputError);
  expect(() => LogEntry.encode(entry)).toThrow(/uint64 too large/);
});

test("decoded bytes fields are views of the input, not copies", () => {
  const entry: LogEntry = {
    lsn: 7n,
    term: 1n,
    txn: { mutations: [{ kind: 1, key: "k", value: Buffer.from("value"), delta: 0n }] },
    commitTimeNs: 0n,
    clientId: "",
    clientSeq: 0n,
  };
  const encoded = encodeLogEntry(entry);
  const decoded = decodeLogEntry(encoded);
  const value = decoded.txn!.mutations[0]!.value;
  expect(value.toString()).toBe("value");
  expect(value.buffer).toBe(encoded.buffer);
});

test("an AppendRequest built before session_lsn existed (the field absent) encodes as session 0, the same bytes as the generated code", () => {
  const older = { txn: undefined, commitTimeNs: 5n, clientId: "c", clientSeq: 1n } as unknown as AppendRequest;
  const bytes = encodeAppendRequest(older);
  expect(decodeAppendRequest(bytes)).toEqual({ txn: undefined, commitTimeNs: 5n, clientId: "c", clientSeq: 1n, sessionLsn: 0n });
  expect(Buffer.from(bytes)).toEqual(Buffer.from(AppendRequest.encode({ ...older, sessionLsn: 0n }).finish()));
});
