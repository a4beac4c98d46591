import { Counter, Gauge, Histogram, monotonicNs, type Registry } from "@logplayer/common";
import type { Dispatcher, TargetCounters, TargetState } from "@logplayer/delivery";
import { DispatchTimeline } from "./dispatch-timeline";

/** The LogPlayer's Prometheus metrics (names prefixed lp_player_). */
export interface PlayerMetrics {
  readonly entriesDispatched: Counter;
  readonly partsSent: Counter<"target">;
  readonly batchesSent: Counter<"target">;
  readonly recoveryStreamsStarted: Counter<"target">;
  readonly reconnects: Counter<"target">;
  readonly gapsReceived: Counter<"target">;
  readonly ackTimeouts: Counter<"target">;
  readonly mainStreamRestarts: Counter;
  readonly mainStreamMoves: Counter;
  readonly dispatchToWriteSeconds: Histogram;
  /** When main-stream entries were dispatched: what lp_player_target_lag_seconds is measured from. */
  readonly dispatchTimeline: DispatchTimeline;
}

/** Every target state, each a value of lp_player_target_state's `state` label. */
export const TARGET_STATES: readonly TargetState[] = ["N", "RF", "FC", "S", "A"];

/** The core's per-target counters, exported as Prometheus counters (they restart at 0 with the process, like all ours). */
const CORE_COUNTERS = [
  "overflows",
  "rewinds",
  "dummiesQueued",
  "staleEventsDropped",
  "aheadHolds",
] as const satisfies readonly (keyof TargetCounters)[];

export function createPlayerMetrics(registry: Registry, dispatcher: Dispatcher, nowNs: () => bigint = monotonicNs): PlayerMetrics {
  const registers = [registry];
  const dispatchTimeline = new DispatchTimeline();
  const labelNames = ["target"] as const;
  const perTarget = (name: string, help: string): Counter<"target"> => new Counter({ name, help, labelNames, registers });
  const gauge = (name: string, help: string, read: (target: Dispatcher["targets"][number]) => number): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        for (const target of dispatcher.targets) this.set({ target: String(target.target) }, read(target));
      },
    });
  };
  new Gauge({
    name: "lp_player_target_state",
    help: "1 for the target's queue state (label state: N normal, RF recovery fetching, FC fetching completed, S suspended, A ahead of the log), else 0.",
    labelNames: ["target", "state"] as const,
    registers,
    collect() {
      for (const target of dispatcher.targets) {
        for (const state of TARGET_STATES) this.set({ target: String(target.target), state }, target.state === state ? 1 : 0);
      }
    },
  });
  gauge(
    "lp_player_target_ahead_of_log",
    "1 when the shard was found ahead of the LogStore's commit LSN: delivery to it is stopped (an alert, see the logs).",
    (t) => (t.aheadOfLog === null ? 0 : 1),
  );
  gauge("lp_player_target_last_ack_lsn", "The shard's applied LSN as last reported.", (t) => Number(t.lastAck));
  gauge("lp_player_target_lag_entries", "currentIndex - lastAck (0 before the main stream starts).", (t) => {
    const current = dispatcher.currentIndex;
    return current === null || current < t.lastAck ? 0 : Number(current - t.lastAck);
  });
  gauge(
    "lp_player_target_lag_seconds",
    "Seconds since the LogPlayer dispatched the oldest entry the shard has not acknowledged (0 when caught up).",
    (t) => dispatchTimeline.lagSeconds(t.lastAck, dispatcher.currentIndex, nowNs()),
  );
  gauge("lp_player_target_queued_parts", "Parts waiting in the normal and catch-up queues.", (t) => t.normalLength + t.catchUpLength);
  gauge("lp_player_target_window_batches", "Sent batches not yet acknowledged.", (t) => t.windowBatches);
  gauge("lp_player_target_term", "The target's term (increments on every connect and rewind).", (t) => t.term);
  for (const name of CORE_COUNTERS) {
    new Counter({
      name: `lp_player_target_${snake(name)}_total`,
      help: CORE_COUNTER_HELP[name],
      labelNames,
      registers,
      collect() {
        // The core keeps the totals; a scrape copies them.
        this.reset();
        for (const target of dispatcher.targets) this.inc({ target: String(target.target) }, target.counters[name]);
      },
    });
  }
  new Gauge({
    name: "lp_player_current_index",
    help: "Last main-stream LSN dispatched (0 before the main stream starts).",
    registers,
    collect() {
      this.set(Number(dispatcher.currentIndex ?? 0n));
    },
  });
  return {
    entriesDispatched: new Counter({ name: "lp_player_entries_dispatched_total", help: "Main-stream entries dispatched.", registers }),
    partsSent: perTarget("lp_player_parts_sent_total", "Parts written to a shard stream (dummies included)."),
    batchesSent: perTarget("lp_player_batches_sent_total", "PartBatch writes."),
    recoveryStreamsStarted: perTarget("lp_player_recovery_streams_started_total", "Bounded recovery reads started."),
    reconnects: perTarget("lp_player_reconnects_total", "Delivery stream (re)connection attempts."),
    gapsReceived: perTarget("lp_player_gaps_received_total", "Gap replies received from a shard."),
    ackTimeouts: perTarget("lp_player_ack_timeouts_total", "Streams declared dead by the health checker (no ack in time)."),
    mainStreamRestarts: new Counter({
      name: "lp_player_main_stream_restarts_total",
      help: "Main stream re-opened after a failure.",
      registers,
    }),
    mainStreamMoves: new Counter({
      name: "lp_player_main_stream_moves_total",
      help: "Working main stream moved to the LogStore leader (which learns of each commit first).",
      registers,
    }),
    dispatchToWriteSeconds: new Histogram({
      name: "lp_player_dispatch_to_write_seconds",
      help: "From dispatching a batch's oldest part to the batch's write callback, per batch.",
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1],
      registers,
    }),
    dispatchTimeline,
  };
}

const CORE_COUNTER_HELP: Record<(typeof CORE_COUNTERS)[number], string> = {
  overflows: "Times the target's normal queue overflowed and it fell back to recovery reads (N -> RF).",
  rewinds: "Times delivery to the target was rewound to its acknowledged LSN (a gap or a reconnect).",
  dummiesQueued: "Dummy parts queued for the target (an LSN with nothing for this shard).",
  staleEventsDropped: "Events of an older stream term ignored for the target.",
  aheadHolds: "Times the target was held (state A) because its shard was ahead of the known commit LSN.",
};

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
