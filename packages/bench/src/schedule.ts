import { assert } from "@logplayer/common";

/**
 * An open-loop schedule: slot i is due at startNs + offsetNs(i), offsetNs(i) =
 * floor(i * 1e9 / rate). Sends follow the clock, never completions, so a slow
 * system cannot slow the load down and hide its queueing (coordinated omission).
 */
export interface OpenLoopSchedule {
  startNs: bigint;
  /** Slots per second; may be fractional. */
  rate: number;
  slotsTotal: number;
}

export const RATE_MAX = 1_000_000;
const NS_PER_S = 1e9;

export function validateSchedule(schedule: OpenLoopSchedule): void {
  assert(Number.isFinite(schedule.rate) && schedule.rate > 0 && schedule.rate <= RATE_MAX, `rate ${schedule.rate} out of (0, ${RATE_MAX}]`);
  assert(Number.isSafeInteger(schedule.slotsTotal) && schedule.slotsTotal >= 0, `slotsTotal ${schedule.slotsTotal} is not a count`);
}

/** Offset of slot `slot` from the start, in whole nanoseconds. Pure, non-decreasing in `slot`. */
export function slotOffsetNs(rate: number, slot: number): number {
  return Math.floor((slot * NS_PER_S) / rate);
}

export function slotTimeNs(schedule: OpenLoopSchedule, slot: number): bigint {
  return schedule.startNs + BigInt(slotOffsetNs(schedule.rate, slot));
}

/**
 * How many slots are due at `nowNs`: slots [0, n) have offsetNs <= now - start.
 * Capped at slotsTotal. Pure.
 */
export function slotsDueAt(schedule: OpenLoopSchedule, nowNs: bigint): number {
  if (nowNs < schedule.startNs) return 0;
  const elapsedNs = Number(nowNs - schedule.startNs);
  // Estimate from the rate, then correct for float rounding against slotOffsetNs itself,
  // so "due" and "slot time" can never disagree.
  let due = Math.min(schedule.slotsTotal, Math.floor((elapsedNs * schedule.rate) / NS_PER_S) + 1);
  for (let step = 0; step < 4 && due > 0 && slotOffsetNs(schedule.rate, due - 1) > elapsedNs; step++) due -= 1;
  for (let step = 0; step < 4 && due < schedule.slotsTotal && slotOffsetNs(schedule.rate, due) <= elapsedNs; step++) due += 1;
  assert(due === 0 || slotOffsetNs(schedule.rate, due - 1) <= elapsedNs, "every counted slot is due");
  assert(due === schedule.slotsTotal || slotOffsetNs(schedule.rate, due) > elapsedNs, "the next slot is not due yet");
  return due;
}

/**
 * The scheduler's state: which slots were handed out. takeDue() returns every
 * slot due and not yet taken, however many a late timer let pile up, so the
 * loop catches up instead of drifting.
 */
export class OpenLoopScheduler {
  readonly schedule: OpenLoopSchedule;
  #nextSlot = 0;

  constructor(schedule: OpenLoopSchedule) {
    validateSchedule(schedule);
    this.schedule = schedule;
  }

  get nextSlot(): number {
    return this.#nextSlot;
  }

  get done(): boolean {
    return this.#nextSlot >= this.schedule.slotsTotal;
  }

  slotTime(slot: number): bigint {
    assert(slot >= 0 && slot < this.schedule.slotsTotal, `slot ${slot} is in the schedule`);
    return slotTimeNs(this.schedule, slot);
  }

  /** Slots [from, to) are due now and handed to the caller. */
  takeDue(nowNs: bigint): { from: number; to: number } {
    const from = this.#nextSlot;
    const to = Math.max(from, slotsDueAt(this.schedule, nowNs));
    this.#nextSlot = to;
    assert(to <= this.schedule.slotsTotal, "never past the last slot");
    return { from, to };
  }

  /** Milliseconds from `nowNs` until the next slot is due (0 when already due); undefined when done. */
  delayToNextMs(nowNs: bigint): number | undefined {
    if (this.done) return undefined;
    const dueNs = slotTimeNs(this.schedule, this.#nextSlot);
    return dueNs <= nowNs ? 0 : Number(dueNs - nowNs) / 1e6;
  }
}
