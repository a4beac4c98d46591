import { Counter, type Logger, type Registry } from "@logplayer/common";
import { status } from "@grpc/grpc-js";
import type { Refusal } from "./authorization";
import { describeIdentity } from "./identity";
import { CLUSTER_POLICY } from "./policy";

/** A refused peer is logged at most once per this period (the metric counts every refusal). */
export const REFUSAL_LOG_INTERVAL_MS = 60_000;
/** Peers remembered for rate limiting; past it the oldest is forgotten (and may be logged again early). */
const REFUSAL_PEERS_MAX = 1024;

export type RefusalReason = "unauthenticated" | "permission_denied" | "sender_mismatch";

/**
 * Where a service's authentication and authorization refusals go: counted in
 * `lp_<service>_auth_refusals_total{method,reason}` and logged once per peer
 * per minute, so a flood of forged calls cannot flood the log.
 */
export class RefusalLog {
  readonly #counter: Counter<"method" | "reason">;
  readonly #logger: Logger;
  readonly #lastLoggedMs = new Map<string, number>();
  readonly #nowMs: () => number;

  constructor(service: string, registry: Registry, logger: Logger, nowMs: () => number = Date.now) {
    this.#counter = new Counter({
      name: `lp_${service}_auth_refusals_total`,
      help: "calls refused because the caller is not authenticated or its role may not make them, by method and reason",
      labelNames: ["method", "reason"],
      registers: [registry],
    });
    this.#logger = logger;
    this.#nowMs = nowMs;
  }

  record(refusal: Refusal & { readonly reasonLabel?: RefusalReason }): void {
    const reason = refusal.reasonLabel ?? (refusal.code === status.UNAUTHENTICATED ? "unauthenticated" : "permission_denied");
    // Only methods the policy names become label values: a caller may send any path, and labels must stay bounded.
    const method = CLUSTER_POLICY.has(refusal.method) ? refusal.method : "other";
    this.#counter.inc({ method, reason });
    const peerKey = refusal.identity === null ? refusal.peer.replace(/:\d+$/, "") : describeIdentity(refusal.identity);
    const now = this.#nowMs();
    const last = this.#lastLoggedMs.get(peerKey);
    if (last !== undefined && now - last < REFUSAL_LOG_INTERVAL_MS) return;
    this.#lastLoggedMs.delete(peerKey);
    this.#lastLoggedMs.set(peerKey, now);
    if (this.#lastLoggedMs.size > REFUSAL_PEERS_MAX) this.#lastLoggedMs.delete(this.#lastLoggedMs.keys().next().value!);
    this.#logger.warn(
      {
        method: refusal.method,
        code: status[refusal.code],
        peer: refusal.peer,
        identity: refusal.identity === null ? null : describeIdentity(refusal.identity),
      },
      `refused a call: ${refusal.reason} (logged once per peer per minute; lp_*_auth_refusals_total counts all)`,
    );
  }
}
