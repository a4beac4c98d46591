import http from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { HOP_TRACE_ENV, hopTrace } from "./hop-trace";

// Re-exported so services need no direct prom-client dependency of their own.
export { Counter, Gauge, Histogram, Registry };

/**
 * Sampling interval of the event-loop delay metrics (nodejs_eventloop_lag_*).
 * prom-client's 10 ms default keeps a timer that wakes every idle process 100
 * times a second: an idle local cluster (five processes) measured 515 wake-ups/s
 * and 3.0 % of a core; at 100 ms, 77 wake-ups/s and 1.7 %. That matters with
 * many shard processes on one host; a 100 ms sample still shows lag that hurts.
 */
export const EVENT_LOOP_MONITORING_MS = 100;

export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITORING_MS });
  return registry;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Serves GET /metrics (Prometheus text format). Port 0 disables it; returns null then. */
/** Whether a process should get traffic now (a load balancer's or Kubernetes' readiness), and why not. */
export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

export interface HttpProbes {
  /** Default: always ready once the server runs. */
  readonly ready?: () => Readiness;
}

/**
 * Serves `/metrics` (Prometheus), `/healthz` (liveness: 200 while the event
 * loop answers) and `/readyz` (readiness: 200, or 503 with the reason) on
 * `host:port`; port -1 turns it off, 0 picks a free port.
 */
export async function startMetricsServer(
  host: string,
  port: number,
  registry: Registry,
  probes: HttpProbes = {},
): Promise<MetricsServer | null> {
  if (port < 0) return null;
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
    } else if (req.method === "GET" && req.url === "/readyz") {
      const readiness = probes.ready?.() ?? { ready: true };
      res.writeHead(readiness.ready ? 200 : 503, { "content-type": "text/plain" });
      res.end(readiness.ready ? "ready\n" : `not ready: ${readiness.reason}\n`);
    } else if (req.method === "GET" && req.url === "/metrics") {
      registry.metrics().then(
        (body) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(body);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
    } else if (req.method === "GET" && req.url === "/debug/hop-trace") {
      // The benchmark's sampled delay trace (hop-trace.ts); off unless the process was started with it.
      res.writeHead(hopTrace.enabled ? 200 : 404, { "content-type": hopTrace.enabled ? "application/json" : "text/plain" });
      res.end(hopTrace.enabled ? JSON.stringify(hopTrace.snapshot()) : `hop trace off (start with ${HOP_TRACE_ENV}=1)\n`);
    } else {
      res.writeHead(404);
      res.end("not found: try /metrics, /healthz or /readyz\n");
    }
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const boundPort = typeof address === "object" && address !== null ? address.port : port;
  return {
    port: boundPort,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
