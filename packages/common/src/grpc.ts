import type { ChannelOptions, Server, ServerCredentials, ServerOptions } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import { assert } from "@logplayer/base";

export interface GrpcLimits {
  /** Largest message accepted or sent, both directions. */
  messageBytesMax: number;
  /** Concurrent streams per HTTP/2 connection. */
  concurrentStreamsMax: number;
}

/** Server options set explicitly at the call site, never left to defaults. */
export function grpcServerOptions(limits: GrpcLimits): ServerOptions {
  return {
    "grpc.max_receive_message_length": limits.messageBytesMax,
    "grpc.max_send_message_length": limits.messageBytesMax,
    "grpc.max_concurrent_streams": limits.concurrentStreamsMax,
    // Detect dead peers on idle streams (the LogPlayer's health checker relies on it too).
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 5_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.min_ping_interval_without_data_ms": 1_000,
  };
}

export function grpcChannelOptions(messageBytesMax: number, keepaliveTimeMs = 10_000): ChannelOptions {
  return {
    "grpc.max_receive_message_length": messageBytesMax,
    "grpc.max_send_message_length": messageBytesMax,
    "grpc.keepalive_time_ms": keepaliveTimeMs,
    "grpc.keepalive_timeout_ms": 5_000,
    "grpc.keepalive_permit_without_calls": 1,
    // Reconnect quickly after a peer restarts; our own backoff sits above this.
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 2_000,
    "grpc.enable_retries": 0,
  };
}

/**
 * The host part of a "host:port" address, for socket calls that take a bare
 * host (the /metrics listener beside a gRPC server, a TCP probe): "127.0.0.1:7100"
 * gives "127.0.0.1" and "[::1]:7100" gives "::1".
 */
export function listenHost(address: string): string {
  const host = hostAsWritten(address);
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** "host:port" with the port replaced and the host kept as written ("[::1]:0" and 7100 give "[::1]:7100"). */
export function withPort(address: string, port: number): string {
  return `${hostAsWritten(address)}:${port}`;
}

/** The port of a "host:port" address: "[::1]:7300" gives 7300. */
export function portOf(address: string): number {
  const port = Number(address.slice(hostAsWritten(address).length + 1));
  assert(Number.isInteger(port) && port >= 0 && port <= 65535, `address ${JSON.stringify(address)} has no port in [0, 65535]`);
  return port;
}

function hostAsWritten(address: string): string {
  const colon = address.lastIndexOf(":");
  assert(colon > 0, `listen address ${JSON.stringify(address)} is not host:port`);
  return address.slice(0, colon);
}

/** Binds with `credentials` (mTLS, or insecure with --insecure) and resolves with the bound port. */
export function bindServer(server: Server, address: string, credentials: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

/** Adds grpc.health.v1.Health; the caller flips it to SERVING once ready. */
export function addHealthService(server: Server): HealthImplementation {
  const health = new HealthImplementation({ "": "NOT_SERVING" });
  health.addToServer(server);
  return health;
}

/** Graceful shutdown, bounded: after `timeoutMs` open calls are cancelled. */
export function shutdownServer(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, timeoutMs);
    timer.unref();
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
