import { seededRandom } from "./seeded-random";
import {
  DEFAULT_TRANSACTION_LIMITS as L,
  grpcMessageBytesMax,
  MESSAGE_FRAMING_BYTES,
  parseTransactionLimits,
  sameTransactionLimits,
  transactionLimitsMismatch,
  utf8ByteLength,
  validateKey,
  validateTransaction,
  type MutationFields,
} from "./limits";

const put = (key: string, value = "v"): MutationFields => ({ kind: 1, key, value: new TextEncoder().encode(value), delta: 0n });

/** Seeded strings from every UTF-8 length class, astral pairs and lone surrogates included. */
function randomStrings(seed: number, count: number): string[] {
  const random = seededRandom(seed);
  const next = (bound: number): number => Math.floor(random() * bound);
  const pools = [
    () => String.fromCharCode(next(0x80)),
    () => String.fromCharCode(0x80 + next(0x780)),
    () => String.fromCharCode(0x800 + next(0xd000)),
    () => String.fromCodePoint(0x10000 + next(0xfffff)),
    () => String.fromCharCode(0xd800 + next(0x800)),
  ];
  return Array.from({ length: count }, () => Array.from({ length: next(10) }, () => pools[next(pools.length)]!()).join(""));
}

it("utf8ByteLength equals the encoded length, lone surrogates counted as U+FFFD", () => {
  const strings = [...randomStrings(11, 5_000), "", "\ud83d", "\ude00", "\ud83d\ude00", "x\udbffy"];
  const encoder = new TextEncoder();
  expect(strings.filter((text) => utf8ByteLength(text) !== encoder.encode(text).length)).toEqual([]);
});

describe("validation answers with coded errors, not statuses", () => {
  it("accepts a well-formed transaction", () => {
    expect(validateTransaction({ mutations: [put("a")] }, 10, L)).toBeNull();
  });

  it.each([
    ["empty", { mutations: [] }, 0, "invalid-input"],
    ["too many mutations", { mutations: Array.from({ length: L.mutationsMax + 1 }, () => put("a")) }, 10, "limit-exceeded"],
    ["a value over value_bytes_max", { mutations: [put("a", "v".repeat(L.valueBytesMax + 1))] }, 10, "limit-exceeded"],
    ["a delta on a PUT", { mutations: [{ ...put("a"), delta: 1n }] }, 10, "invalid-input"],
  ])("refuses %s", (_name, txn, bytes, kind) => {
    expect(validateTransaction(txn, bytes, L)?.kind).toBe(kind);
  });

  it("measures a key in UTF-8 bytes, not UTF-16 units", () => {
    const fourByteCharacters = "\ud83d\ude00".repeat(L.keyBytesMax / 4);
    expect(validateKey(fourByteCharacters, L)).toBeNull();
    expect(validateKey(`${fourByteCharacters}x`, L)?.message).toMatch(/key_bytes_max/);
  });
});

describe("cluster limits", () => {
  it("the message cap fits the largest entry and the largest value with its key", () => {
    const bigValues = { ...L, entryBytesMax: 1024 * 1024, valueBytesMax: 4 * 1024 * 1024 };
    expect(grpcMessageBytesMax(L)).toBe(L.entryBytesMax + MESSAGE_FRAMING_BYTES);
    expect(grpcMessageBytesMax(bigValues)).toBe(bigValues.valueBytesMax + bigValues.keyBytesMax + MESSAGE_FRAMING_BYTES);
  });

  it("parses a recorded set and refuses one with a field missing, fractional or out of range", () => {
    expect(parseTransactionLimits(JSON.parse(JSON.stringify(L)))).toEqual(L);
    for (const bad of [null, "x", { ...L, mutationsMax: undefined }, { ...L, keyBytesMax: 1.5 }, { ...L, entryBytesMax: 10 }]) {
      expect(parseTransactionLimits(bad)).toBeNull();
    }
  });

  it("names each flag that differs from the recorded value, and only those", () => {
    expect(transactionLimitsMismatch(L, {})).toBeNull();
    expect(transactionLimitsMismatch(L, { valueBytesMax: L.valueBytesMax })).toBeNull();
    expect(transactionLimitsMismatch(L, { valueBytesMax: 400_000, keyBytesMax: L.keyBytesMax })).toBe(
      `--value-bytes-max 400000 (recorded: ${L.valueBytesMax})`,
    );
    expect(sameTransactionLimits(L, { ...L })).toBe(true);
    expect(sameTransactionLimits(L, { ...L, mutationsMax: 1 })).toBe(false);
  });
});
