import { Client } from "@grpc/grpc-js";
import { channelCredentialsFor, type TransportSecurity } from "@logplayer/tls";
import { grpcChannelOptions } from "@logplayer/common";
import { service as healthService } from "grpc-health-check";
import { callUnary } from "./call";

/** grpc.health.v1.HealthCheckResponse.ServingStatus. */
export enum HealthServingStatus {
  UNKNOWN = 0,
  SERVING = 1,
  NOT_SERVING = 2,
  SERVICE_UNKNOWN = 3,
}

export interface HealthCheckResult {
  status: HealthServingStatus;
  /** "SERVING", "NOT_SERVING"... as the server said it. */
  statusName: string;
}

/** A health response is one enum field; anything bigger is not a health response. */
const HEALTH_MESSAGE_BYTES_MAX = 64 * 1024;
const check = healthService["Check"]!;

interface HealthCheckResponse {
  status?: string;
}

/**
 * Calls grpc.health.v1.Health/Check (messages from grpc-health-check) on any
 * of our services. Fails fast (no wait for a connection), as a container health
 * check wants. Throws a typed ClientError when the call itself fails (e.g.
 * UnavailableError when nothing listens there).
 */
export async function checkHealth(
  address: string,
  opts: { service?: string; timeoutMs: number; security: TransportSecurity },
): Promise<HealthCheckResult> {
  const client = new Client(address, channelCredentialsFor(opts.security), grpcChannelOptions(HEALTH_MESSAGE_BYTES_MAX));
  try {
    const response = await callUnary<{ service: string }, HealthCheckResponse>(
      (request, metadata, options, callback) =>
        client.makeUnaryRequest(
          check.path,
          check.requestSerialize,
          check.responseDeserialize as (bytes: Buffer) => HealthCheckResponse,
          request,
          metadata,
          options,
          callback,
        ),
      { service: opts.service ?? "" },
      { context: `health of ${address}`, deadlineMs: Date.now() + opts.timeoutMs, waitForReady: false },
    );
    const statusName = response.status ?? "UNKNOWN";
    const status = HealthServingStatus[statusName as keyof typeof HealthServingStatus] ?? HealthServingStatus.UNKNOWN;
    return { status, statusName };
  } finally {
    client.close();
  }
}
