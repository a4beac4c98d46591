/**
 * A hand-written protobuf codec for the messages on the delivery path:
 * AppendRequest, LogEntry, ReadResponse and DeliverRequest (with Transaction,
 * Mutation, PartBatch and Part inside them), and the answers that flow back
 * once per batch (AppendStreamResponse, DeliverResponse). Everything else
 * uses the ts-proto code in ../gen.
 *
 * Why: ts-proto's BinaryWriter copies a bytes field once per level of
 * nesting (value -> Mutation -> Transaction -> LogEntry -> ReadResponse) and
 * once more in Buffer.from(finish()); a 10 KB transaction cost ~170 us to
 * encode, the largest single cost of the LogStore. Here a message is sized
 * first and written into one Buffer, so every value is copied once; decoding
 * returns views of the received bytes instead of copies.
 *
 * The bytes are exactly ts-proto's (fields in number order, defaults left
 * out), and decoding gives the same objects; codec.test.ts checks both on
 * random messages. Peers that use the generated code, or another language,
 * interoperate unchanged.
 *
 * Decoding is stricter than ts-proto on malformed input: a nested message
 * may not read past its own length (ts-proto checks only the whole buffer).
 */
import { AssertionError, InvalidInputError } from "@logplayer/base";
import type { AppendAnswer, AppendRequest, AppendStreamResponse, ReadResponse } from "../gen/logplayer/v1/logstore";
import {
  DeliverHello,
  DeliverRequest as GeneratedDeliverRequest,
  DeliverResponse as GeneratedDeliverResponse,
  HelloReply,
  type Ack,
  type DeliverResponse,
  type Gap,
  type Part,
  type PartBatch,
} from "../gen/logplayer/v1/shard";
import type { LogEntry, Mutation, Transaction } from "../gen/logplayer/v1/types";
import type { DeliverRequest } from "../gen/logplayer/v1/shard";
import {
  checkUint64,
  delimitedSize,
  int32Size,
  unzigzag64,
  varintSizeBigint,
  varintSizeNumber,
  WIRE_END_GROUP,
  WireReader,
  WireWriter,
  zigzag64,
} from "./wire";

/**
 * Sizes found by the sizing pass, in the order the writing pass needs them
 * (a message's size, then its fields' sizes). Module-level and reused: both
 * passes run synchronously within one encode call.
 */
const sizes: number[] = [];
let sizeCursor = 0;

function reserveSize(): number {
  sizes.push(0);
  return sizes.length - 1;
}

function nextSize(): number {
  const size = sizes[sizeCursor++];
  if (size === undefined) throw new AssertionError("wire: sizing and writing passes disagree");
  return size;
}

function startEncode(): void {
  sizes.length = 0;
  sizeCursor = 0;
}

// ---- sizing pass ---------------------------------------------------------

function uint64Size(value: bigint, field: string): number {
  return value === 0n ? 0 : 1 + varintSizeBigint(checkUint64(value, field));
}

function stringSize(value: string): number {
  if (value === "") return 0;
  const bytes = Buffer.byteLength(value, "utf8");
  sizes.push(bytes);
  return 1 + delimitedSize(bytes);
}

function measureMutation(m: Mutation): number {
  const slot = reserveSize();
  let size = 0;
  if (m.kind !== 0) size += 1 + int32Size(m.kind);
  size += stringSize(m.key);
  if (m.value.length !== 0) size += 1 + delimitedSize(m.value.length);
  if (m.delta !== 0n) size += 1 + varintSizeBigint(zigzag64(m.delta, "message.delta"));
  sizes[slot] = size;
  return size;
}

function measureMutations(mutations: readonly Mutation[]): number {
  let size = 0;
  for (const m of mutations) size += 1 + delimitedSize(measureMutation(m));
  return size;
}

function measureTransaction(txn: Transaction): number {
  const slot = reserveSize();
  const size = measureMutations(txn.mutations);
  sizes[slot] = size;
  return size;
}

function measureLogEntry(entry: LogEntry): number {
  const slot = reserveSize();
  let size = uint64Size(entry.lsn, "message.lsn") + uint64Size(entry.term, "message.term");
  if (entry.txn !== undefined) size += 1 + delimitedSize(measureTransaction(entry.txn));
  size += uint64Size(entry.commitTimeNs, "message.commitTimeNs");
  size += stringSize(entry.clientId);
  size += uint64Size(entry.clientSeq, "message.clientSeq");
  if (entry.configChange !== undefined) size += 1 + delimitedSize(entry.configChange.length);
  sizes[slot] = size;
  return size;
}

function measureAppendRequest(request: AppendRequest): number {
  const slot = reserveSize();
  let size = 0;
  if (request.txn !== undefined) size += 1 + delimitedSize(measureTransaction(request.txn));
  size += uint64Size(request.commitTimeNs, "message.commitTimeNs");
  size += stringSize(request.clientId);
  size += uint64Size(request.clientSeq, "message.clientSeq");
  // `?? 0n`: a caller built its request before the field existed (plain objects typed loosely, or JavaScript).
  size += uint64Size(request.sessionLsn ?? 0n, "message.sessionLsn");
  sizes[slot] = size;
  return size;
}

function measureReadResponse(response: ReadResponse): number {
  const slot = reserveSize();
  let size = 0;
  for (const entry of response.entries) size += 1 + delimitedSize(measureLogEntry(entry));
  size += uint64Size(response.commitLsn, "message.commitLsn");
  // `??`: a caller built its response before the fields existed (plain objects typed loosely, or JavaScript).
  size += stringSize(response.leaderAddress ?? "");
  if (response.fromLeader === true) size += 2;
  sizes[slot] = size;
  return size;
}

function measurePart(part: Part): number {
  const slot = reserveSize();
  let size = uint64Size(part.lsn, "message.lsn") + uint64Size(part.prevLsn, "message.prevLsn");
  size += measureMutations(part.mutations);
  size += uint64Size(part.commitTimeNs, "message.commitTimeNs");
  size += uint64Size(part.dispatchTimeNs, "message.dispatchTimeNs");
  sizes[slot] = size;
  return size;
}

function measurePartBatch(batch: PartBatch): number {
  const slot = reserveSize();
  let size = 0;
  for (const part of batch.parts) size += 1 + delimitedSize(measurePart(part));
  size += uint64Size(batch.commitLsn, "message.commitLsn");
  sizes[slot] = size;
  return size;
}

function measureAppendAnswer(answer: AppendAnswer): number {
  const slot = reserveSize();
  let size = uint64Size(answer.clientSeq, "message.clientSeq") + uint64Size(answer.lsn, "message.lsn");
  if (answer.duplicate) size += 2;
  if (answer.errorCode !== 0) size += 1 + varintSizeNumber(answer.errorCode >>> 0);
  size += stringSize(answer.errorMessage);
  size += stringSize(answer.leaderAddress);
  size += stringSize(answer.errorReason ?? "");
  sizes[slot] = size;
  return size;
}

function measureAppendStreamResponse(response: AppendStreamResponse): number {
  const slot = reserveSize();
  let size = 0;
  for (const answer of response.answers) size += 1 + delimitedSize(measureAppendAnswer(answer));
  sizes[slot] = size;
  return size;
}

function measureAck(ack: Ack): number {
  return uint64Size(ack.appliedLsn, "message.appliedLsn");
}

function measureGap(gap: Gap): number {
  return uint64Size(gap.appliedLsn, "message.appliedLsn") + uint64Size(gap.lsn, "message.lsn") + uint64Size(gap.prevLsn, "message.prevLsn");
}

// ---- writing pass --------------------------------------------------------

function writeTag(w: WireWriter, tag: number): void {
  w.buf[w.pos++] = tag;
}

function writeUint64(w: WireWriter, tag: number, value: bigint): void {
  if (value === 0n) return;
  writeTag(w, tag);
  w.varintBigint(value);
}

function writeString(w: WireWriter, tag: number, value: string): void {
  if (value === "") return;
  writeTag(w, tag);
  w.string(value, nextSize());
}

function writeMutation(w: WireWriter, m: Mutation): void {
  if (m.kind !== 0) {
    writeTag(w, 8);
    w.int32(m.kind);
  }
  writeString(w, 18, m.key);
  if (m.value.length !== 0) {
    writeTag(w, 26);
    w.bytes(m.value);
  }
  if (m.delta !== 0n) {
    writeTag(w, 32);
    w.varintBigint(zigzag64(m.delta, "message.delta"));
  }
}

function writeMutations(w: WireWriter, tag: number, mutations: readonly Mutation[]): void {
  for (const m of mutations) {
    writeTag(w, tag);
    w.varint(nextSize());
    writeMutation(w, m);
  }
}

function writeTransactionField(w: WireWriter, tag: number, txn: Transaction | undefined): void {
  if (txn === undefined) return;
  writeTag(w, tag);
  w.varint(nextSize());
  writeMutations(w, 10, txn.mutations);
}

function writeLogEntry(w: WireWriter, entry: LogEntry): void {
  writeUint64(w, 8, entry.lsn);
  writeUint64(w, 16, entry.term);
  writeTransactionField(w, 26, entry.txn);
  writeUint64(w, 32, entry.commitTimeNs);
  writeString(w, 42, entry.clientId);
  writeUint64(w, 48, entry.clientSeq);
  if (entry.configChange !== undefined) {
    writeTag(w, 58);
    w.bytes(entry.configChange);
  }
}

function writeAppendRequest(w: WireWriter, request: AppendRequest): void {
  writeTransactionField(w, 10, request.txn);
  writeUint64(w, 16, request.commitTimeNs);
  writeString(w, 26, request.clientId);
  writeUint64(w, 32, request.clientSeq);
  writeUint64(w, 40, request.sessionLsn ?? 0n);
}

function writeReadResponse(w: WireWriter, response: ReadResponse): void {
  for (const entry of response.entries) {
    writeTag(w, 10);
    w.varint(nextSize());
    writeLogEntry(w, entry);
  }
  writeUint64(w, 16, response.commitLsn);
  writeString(w, 26, response.leaderAddress ?? "");
  if (response.fromLeader === true) {
    writeTag(w, 32);
    w.varint(1);
  }
}

function writePart(w: WireWriter, part: Part): void {
  writeUint64(w, 8, part.lsn);
  writeUint64(w, 16, part.prevLsn);
  writeMutations(w, 26, part.mutations);
  writeUint64(w, 32, part.commitTimeNs);
  writeUint64(w, 40, part.dispatchTimeNs);
}

function writePartBatch(w: WireWriter, batch: PartBatch): void {
  for (const part of batch.parts) {
    writeTag(w, 10);
    w.varint(nextSize());
    writePart(w, part);
  }
  writeUint64(w, 16, batch.commitLsn);
}

function writeAppendAnswer(w: WireWriter, answer: AppendAnswer): void {
  writeUint64(w, 8, answer.clientSeq);
  writeUint64(w, 16, answer.lsn);
  if (answer.duplicate) {
    writeTag(w, 24);
    w.varint(1);
  }
  if (answer.errorCode !== 0) {
    writeTag(w, 32);
    w.varint(answer.errorCode >>> 0);
  }
  writeString(w, 42, answer.errorMessage);
  writeString(w, 50, answer.leaderAddress);
  writeString(w, 58, answer.errorReason ?? "");
}

function writeAppendStreamResponse(w: WireWriter, response: AppendStreamResponse): void {
  for (const answer of response.answers) {
    writeTag(w, 10);
    w.varint(nextSize());
    writeAppendAnswer(w, answer);
  }
}

/** Runs both passes for a top-level message whose own size is the first one recorded. */
function encodeWith<T>(message: T, measure: (message: T) => number, write: (w: WireWriter, message: T) => void): Buffer {
  startEncode();
  const size = measure(message);
  const w = new WireWriter(size);
  nextSize();
  write(w, message);
  if (sizeCursor !== sizes.length) throw new AssertionError("wire: sizing and writing passes disagree");
  return w.finish();
}

/** Bytes of a Transaction's encoding (what the transaction size limit counts), without encoding it. */
export function transactionEncodedBytes(txn: Transaction): number {
  startEncode();
  return measureTransaction(txn);
}

export function encodeLogEntry(entry: LogEntry): Buffer {
  return encodeWith(entry, measureLogEntry, writeLogEntry);
}

export function encodeAppendRequest(request: AppendRequest): Buffer {
  return encodeWith(request, measureAppendRequest, writeAppendRequest);
}

export function encodeReadResponse(response: ReadResponse): Buffer {
  return encodeWith(response, measureReadResponse, writeReadResponse);
}

export function encodeDeliverRequest(request: DeliverRequest): Buffer {
  const body = request.body;
  // The hello is small and rare: the generated code encodes it.
  if (body?.$case !== "batch") return Buffer.from(GeneratedDeliverRequest.encode(request).finish());
  return encodeWith(
    body.value,
    // The batch's own size is the first recorded, so encodeWith skips it as the top-level size;
    // the writer still needs it for the field's length prefix.
    (batch) => 1 + delimitedSize(measurePartBatch(batch)),
    (w, batch) => {
      writeTag(w, 18);
      w.varint(sizes[0]!);
      writePartBatch(w, batch);
    },
  );
}

export function encodeAppendStreamResponse(response: AppendStreamResponse): Buffer {
  return encodeWith(response, measureAppendStreamResponse, writeAppendStreamResponse);
}

export function encodeDeliverResponse(response: DeliverResponse): Buffer {
  const body = response.body;
  // The hello reply is small and rare: the generated code encodes it.
  if (body === undefined || body.$case === "hello") return Buffer.from(GeneratedDeliverResponse.encode(response).finish());
  // One-level messages of uint64 fields: no nested sizes to record.
  const bodyBytes = body.$case === "ack" ? measureAck(body.value) : measureGap(body.value);
  const w = new WireWriter(1 + delimitedSize(bodyBytes));
  writeTag(w, body.$case === "ack" ? 18 : 26);
  w.varint(bodyBytes);
  writeUint64(w, 8, body.value.appliedLsn);
  if (body.$case === "gap") {
    writeUint64(w, 16, body.value.lsn);
    writeUint64(w, 24, body.value.prevLsn);
  }
  return w.finish();
}

// ---- decoding ------------------------------------------------------------

/** Decodes a length-delimited sub-message; it may not read past its length. */
function nested<T>(r: WireReader, decode: (r: WireReader) => T): T {
  const length = r.length();
  const outerEnd = r.end;
  const end = r.pos + length;
  r.end = end;
  const value = decode(r);
  r.pos = end;
  r.end = outerEnd;
  return value;
}

/** After an unexpected tag: true when the message ends here (as ts-proto treats tag 0 and end-group). */
function endsMessage(r: WireReader, tag: number): boolean {
  if ((tag & 7) === WIRE_END_GROUP || tag === 0) return true;
  r.skip(tag & 7);
  return false;
}

/** The default of an absent bytes field, shared: a zero-length Buffer has nothing to modify. */
const EMPTY_BYTES = Buffer.alloc(0);

function decodeMutation(r: WireReader): Mutation {
  const m: Mutation = { kind: 0, key: "", value: EMPTY_BYTES, delta: 0n };
  while (r.pos < r.end) {
    const tag = r.uint32();
    switch (tag) {
      case 8:
        m.kind = r.int32();
        continue;
      case 18:
        m.key = r.string();
        continue;
      case 26:
        m.value = r.bytes();
        continue;
      case 32:
        m.delta = unzigzag64(r.uint64());
        continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return m;
}

function decodeTransaction(r: WireReader): Transaction {
  const txn: Transaction = { mutations: [] };
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === 10) {
      txn.mutations.push(nested(r, decodeMutation));
      continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return txn;
}

function decodeLogEntryBody(r: WireReader): LogEntry {
  const entry: LogEntry = { lsn: 0n, term: 0n, txn: undefined, commitTimeNs: 0n, clientId: "", clientSeq: 0n };
  while (r.pos < r.end) {
    const tag = r.uint32();
    switch (tag) {
      case 8:
        entry.lsn = r.uint64();
        continue;
      case 16:
        entry.term = r.uint64();
        continue;
      case 26:
        entry.txn = nested(r, decodeTransaction);
        continue;
      case 32:
        entry.commitTimeNs = r.uint64();
        continue;
      case 42:
        entry.clientId = r.string();
        continue;
      case 48:
        entry.clientSeq = r.uint64();
        continue;
      case 58:
        entry.configChange = r.bytes();
        continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return entry;
}

function decodeAppendRequestBody(r: WireReader): AppendRequest {
  const request: AppendRequest = { txn: undefined, commitTimeNs: 0n, clientId: "", clientSeq: 0n, sessionLsn: 0n };
  while (r.pos < r.end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        request.txn = nested(r, decodeTransaction);
        continue;
      case 16:
        request.commitTimeNs = r.uint64();
        continue;
      case 26:
        request.clientId = r.string();
        continue;
      case 32:
        request.clientSeq = r.uint64();
        continue;
      case 40:
        request.sessionLsn = r.uint64();
        continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return request;
}

function decodeReadResponseBody(r: WireReader): ReadResponse {
  const response: ReadResponse = { entries: [], commitLsn: 0n, leaderAddress: "", fromLeader: false };
  while (r.pos < r.end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        response.entries.push(nested(r, decodeLogEntryBody));
        continue;
      case 16:
        response.commitLsn = r.uint64();
        continue;
      case 26:
        response.leaderAddress = r.string();
        continue;
      case 32:
        response.fromLeader = r.uint64() !== 0n;
        continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return response;
}

function decodePart(r: WireReader): Part {
  const part: Part = { lsn: 0n, prevLsn: 0n, mutations: [], commitTimeNs: 0n, dispatchTimeNs: 0n };
  while (r.pos < r.end) {
    const tag = r.uint32();
    switch (tag) {
      case 8:
        part.lsn = r.uint64();
        continue;
      case 16:
        part.prevLsn = r.uint64();
        continue;
      case 26:
        part.mutations.push(nested(r, decodeMutation));
        continue;
      case 32:
        part.commitTimeNs = r.uint64();
        continue;
      case 40:
        part.dispatchTimeNs = r.uint64();
        continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return part;
}

function decodePartBatch(r: WireReader): PartBatch {
  const batch: PartBatch = { parts: [], commitLsn: 0n };
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === 10) {
      batch.parts.push(nested(r, decodePart));
      continue;
    }
    if (tag === 16) {
      batch.commitLsn = r.uint64();
      continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return batch;
}

/**
 * A rare message (a stream's hello) left to the generated decoder: its
 * malformed input throws RangeError or Error, which become InvalidInputError
 * like the hand-written decoders' (INVALID_ARGUMENT at a service).
 */
function decodeGenerated<T>(type: { decode(bytes: Uint8Array): T }, bytes: Uint8Array): T {
  try {
    return type.decode(bytes);
  } catch (err: unknown) {
    throw new InvalidInputError(`malformed message: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function decodeDeliverRequestBody(r: WireReader): DeliverRequest {
  const request: DeliverRequest = {};
  while (r.pos < r.end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        request.body = { $case: "hello", value: decodeGenerated(DeliverHello, r.bytes()) };
        continue;
      case 18:
        request.body = { $case: "batch", value: nested(r, decodePartBatch) };
        continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return request;
}

function decodeAppendAnswer(r: WireReader): AppendAnswer {
  const answer: AppendAnswer = {
    clientSeq: 0n,
    lsn: 0n,
    duplicate: false,
    errorCode: 0,
    errorMessage: "",
    leaderAddress: "",
    errorReason: "",
  };
  while (r.pos < r.end) {
    const tag = r.uint32();
    switch (tag) {
      case 8:
        answer.clientSeq = r.uint64();
        continue;
      case 16:
        answer.lsn = r.uint64();
        continue;
      case 24:
        answer.duplicate = r.uint64() !== 0n;
        continue;
      case 32:
        answer.errorCode = r.uint32();
        continue;
      case 42:
        answer.errorMessage = r.string();
        continue;
      case 50:
        answer.leaderAddress = r.string();
        continue;
      case 58:
        answer.errorReason = r.string();
        continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return answer;
}

function decodeAppendStreamResponseBody(r: WireReader): AppendStreamResponse {
  const response: AppendStreamResponse = { answers: [] };
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === 10) {
      response.answers.push(nested(r, decodeAppendAnswer));
      continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return response;
}

function decodeAck(r: WireReader): Ack {
  const ack: Ack = { appliedLsn: 0n };
  while (r.pos < r.end) {
    const tag = r.uint32();
    if (tag === 8) {
      ack.appliedLsn = r.uint64();
      continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return ack;
}

function decodeGap(r: WireReader): Gap {
  const gap: Gap = { appliedLsn: 0n, lsn: 0n, prevLsn: 0n };
  while (r.pos < r.end) {
    const tag = r.uint32();
    switch (tag) {
      case 8:
        gap.appliedLsn = r.uint64();
        continue;
      case 16:
        gap.lsn = r.uint64();
        continue;
      case 24:
        gap.prevLsn = r.uint64();
        continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return gap;
}

function decodeDeliverResponseBody(r: WireReader): DeliverResponse {
  const response: DeliverResponse = {};
  while (r.pos < r.end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        response.body = { $case: "hello", value: decodeGenerated(HelloReply, r.bytes()) };
        continue;
      case 18:
        response.body = { $case: "ack", value: nested(r, decodeAck) };
        continue;
      case 26:
        response.body = { $case: "gap", value: nested(r, decodeGap) };
        continue;
    }
    if (endsMessage(r, tag)) break;
  }
  return response;
}

/** Bytes fields of the result are views of `bytes`: keep it unmodified while they live. */
export function decodeLogEntry(bytes: Uint8Array): LogEntry {
  return decodeLogEntryBody(new WireReader(bytes));
}

export function decodeAppendRequest(bytes: Uint8Array): AppendRequest {
  return decodeAppendRequestBody(new WireReader(bytes));
}

export function decodeReadResponse(bytes: Uint8Array): ReadResponse {
  return decodeReadResponseBody(new WireReader(bytes));
}

export function decodeDeliverRequest(bytes: Uint8Array): DeliverRequest {
  return decodeDeliverRequestBody(new WireReader(bytes));
}

export function decodeAppendStreamResponse(bytes: Uint8Array): AppendStreamResponse {
  return decodeAppendStreamResponseBody(new WireReader(bytes));
}

export function decodeDeliverResponse(bytes: Uint8Array): DeliverResponse {
  return decodeDeliverResponseBody(new WireReader(bytes));
}
