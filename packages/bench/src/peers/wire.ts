/**
 * What the peer pipelines carry per shard: the client's send time (the same
 * CLOCK_MONOTONIC as the cluster's commit_time_ns) and the shard's mutations.
 * One small binary frame, so that encoding costs the peers what it costs us.
 */
export interface PeerMessage {
  sendNs: bigint;
  keys: string[];
  values: Buffer[];
}

export function encodePeerMessage(message: PeerMessage): Buffer {
  const keys = message.keys.map((key) => Buffer.from(key, "utf8"));
  const size = 12 + keys.reduce((sum, key, i) => sum + 8 + key.length + message.values[i]!.length, 0);
  const out = Buffer.allocUnsafe(size);
  out.writeBigUInt64LE(message.sendNs, 0);
  out.writeUInt32LE(keys.length, 8);
  let at = 12;
  keys.forEach((key, i) => {
    const value = message.values[i]!;
    out.writeUInt32LE(key.length, at);
    key.copy(out, at + 4);
    at += 4 + key.length;
    out.writeUInt32LE(value.length, at);
    value.copy(out, at + 4);
    at += 4 + value.length;
  });
  return out;
}

export function decodePeerMessage(frame: Uint8Array): PeerMessage {
  const buffer = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  const sendNs = buffer.readBigUInt64LE(0);
  const count = buffer.readUInt32LE(8);
  const keys: string[] = [];
  const values: Buffer[] = [];
  let at = 12;
  for (let i = 0; i < count; i++) {
    const keyLength = buffer.readUInt32LE(at);
    keys.push(buffer.toString("utf8", at + 4, at + 4 + keyLength));
    at += 4 + keyLength;
    const valueLength = buffer.readUInt32LE(at);
    values.push(buffer.subarray(at + 4, at + 4 + valueLength));
    at += 4 + valueLength;
  }
  return { sendNs, keys, values };
}

/** Messages between the peers runner and a consumer process (IPC). */
export type ToConsumer = { type: "reset" } | { type: "report"; expected: number; timeoutMs: number } | { type: "stop" };
export type FromConsumer =
  | { type: "ready" }
  | { type: "result"; applied: number; sqliteCommitDelayUs: string }
  | { type: "failed"; error: string };
