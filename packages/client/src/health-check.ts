import { Client, credentials, status as Status } from "@grpc/grpc-js";
import { grpcChannelOptions } from "@logplayer/common";
import { callUnary } from "./call";
import { InternalError } from "./errors";

/** grpc.health.v1.HealthCheckResponse.ServingStatus. */
export enum HealthServingStatus {
  UNKNOWN = 0,
  SERVING = 1,
  NOT_SERVING = 2,
  SERVICE_UNKNOWN = 3,
}

export interface HealthCheckResult {
  status: HealthServingStatus;
  /** "SERVING", "NOT_SERVING"... or "STATUS_<n>" for a value this code does not know. */
  statusName: string;
}

const CHECK_PATH = "/grpc.health.v1.Health/Check";
/** A health response is one enum field; anything bigger is not a health response. */
const HEALTH_MESSAGE_BYTES_MAX = 64 * 1024;

/*
 * The two health messages are tiny, so they are encoded by hand here rather
 * than pulling a protobuf runtime into the client: HealthCheckRequest is
 * `string service = 1`, HealthCheckResponse is `ServingStatus status = 1`.
 */

function encodeVarint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

export function encodeHealthCheckRequest(service: string): Buffer {
  if (service === "") return Buffer.alloc(0);
  const name = Buffer.from(service, "utf8");
  return Buffer.concat([Buffer.from([0x0a, ...encodeVarint(name.length)]), name]);
}

function readVarint(bytes: Buffer, start: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  // A varint has at most 10 bytes.
  for (let i = start; i < bytes.length && i < start + 10; i++) {
    const byte = bytes[i]!;
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) return { value, next: i + 1 };
  }
  throw new InternalError(Status.INTERNAL, "health response: truncated varint");
}

/** Reads field 1 (status); skips unknown fields as the protobuf rules say. */
export function decodeHealthCheckResponse(bytes: Buffer): HealthServingStatus {
  if (bytes.length > HEALTH_MESSAGE_BYTES_MAX) throw new InternalError(Status.INTERNAL, "health response: too large");
  let status = 0;
  let offset = 0;
  while (offset < bytes.length) {
    const tag = readVarint(bytes, offset);
    const field = Math.floor(tag.value / 8);
    const wireType = tag.value % 8;
    offset = tag.next;
    if (wireType === 0) {
      const value = readVarint(bytes, offset);
      if (field === 1) status = value.value;
      offset = value.next;
    } else if (wireType === 2) {
      const length = readVarint(bytes, offset);
      offset = length.next + length.value;
    } else if (wireType === 1 || wireType === 5) {
      offset += wireType === 1 ? 8 : 4;
    } else {
      throw new InternalError(Status.INTERNAL, `health response: unsupported wire type ${wireType}`);
    }
  }
  if (offset !== bytes.length) throw new InternalError(Status.INTERNAL, "health response: truncated field");
  return status;
}

/**
 * Calls grpc.health.v1.Health/Check on any of our services. Fails fast (no
 * wait for a connection), as a container health check wants. Throws a typed
 * ClientError when the call itself fails (e.g. UnavailableError when nothing
 * listens there).
 */
export async function checkHealth(address: string, opts: { service?: string; timeoutMs: number }): Promise<HealthCheckResult> {
  const client = new Client(address, credentials.createInsecure(), grpcChannelOptions(HEALTH_MESSAGE_BYTES_MAX));
  try {
    const status = await callUnary<Buffer, HealthServingStatus>(
      (request, metadata, options, callback) =>
        client.makeUnaryRequest(CHECK_PATH, (r: Buffer) => r, decodeHealthCheckResponse, request, metadata, options, callback),
      encodeHealthCheckRequest(opts.service ?? ""),
      { context: `health of ${address}`, deadlineMs: Date.now() + opts.timeoutMs, waitForReady: false },
    );
    return { status, statusName: HealthServingStatus[status] ?? `STATUS_${status}` };
  } finally {
    client.close();
  }
}
