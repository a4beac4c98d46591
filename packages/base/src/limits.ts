/** Size limits on what a transaction may hold. Each is a flag on the LogStore. */
export interface TransactionLimits {
  /** Encoded size of one log entry. */
  entryBytesMax: number;
  mutationsMax: number;
  keyBytesMax: number;
  valueBytesMax: number;
}

export const DEFAULT_TRANSACTION_LIMITS: TransactionLimits = {
  entryBytesMax: 1024 * 1024,
  mutationsMax: 1000,
  keyBytesMax: 512,
  valueBytesMax: 256 * 1024,
};

/** gRPC message size cap: an entry plus framing headroom. */
export function grpcMessageBytesMax(limits: TransactionLimits): number {
  return limits.entryBytesMax + 64 * 1024;
}
