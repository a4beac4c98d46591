import type { LogEntry } from "@logplayer/proto";
import { SimDisk } from "./sim-segment-files";
import { seededRandom, testEntry } from "./test-entries";
import { DEFAULT_WAL_LIMITS, Wal, type WalLimits } from "./wal";
import { encodeEntryPayload } from "./wal-record";

// The real Wal (group commit, segment roll, truncateAfter, recovery on open)
// over simulated files that complete one operation at a time, in an order
// and with crashes chosen by a seed. After every crash the Wal is reopened and
// what it recovered is checked against what it had acknowledged.

// A failure names its seed; WAL_CRASH_SEED_FIRST=<seed> WAL_CRASH_SEEDS=1 replays just that one.
const SEEDS = Number(process.env.WAL_CRASH_SEEDS ?? 150);
const SEED_FIRST = Number(process.env.WAL_CRASH_SEED_FIRST ?? 1);
const STEPS_PER_SEED = 400;
const LIMITS: WalLimits = { ...DEFAULT_WAL_LIMITS, segmentBytesMax: 4096, cacheBytesMax: 2048, appendQueueMax: 64 };

interface Truncation {
  readonly lsn: bigint;
  /** The log as it was when truncateAfter was called. */
  readonly before: readonly LogEntry[];
}

interface SeedResult {
  readonly failure: string | null;
  readonly crashes: number;
  readonly acknowledged: number;
  readonly truncations: number;
  readonly segmentRolls: number;
  /** Recoveries that cut a torn tail. */
  readonly tornTails: number;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const sameBytes = (a: LogEntry, b: LogEntry): boolean => Buffer.compare(encodeEntryPayload(a), encodeEntryPayload(b)) === 0;

async function runSeed(seed: number): Promise<SeedResult> {
  const random = seededRandom(seed);
  const disk = new SimDisk({ random: seededRandom(seed + 1_000_003), completion: "manual" });
  /** The log the running Wal holds (acknowledged or not): log[i].lsn === i + 1. */
  let log: LogEntry[] = [];
  /** Entries log[0, durableCount) were acknowledged durable (or recovered): a crash must keep them. */
  let durableCount = 0;
  // Typed with "as": the closures below change these, so they must not narrow to null here.
  let truncation = null as Truncation | null;
  let term = 1n;
  let wal = null as Wal | null;
  let opening = false;
  let generation = 0;
  let failure: string | null = null;
  const stats = { crashes: 0, acknowledged: 0, truncations: 0, segmentRolls: 0, tornTails: 0 };

  /** What the log may look like after a crash now: a prefix of `candidate` at least `required` long. */
  const expectation = (): { candidate: readonly LogEntry[]; required: number } =>
    truncation === null
      ? { candidate: log, required: durableCount }
      : { candidate: truncation.before, required: Math.min(durableCount, Number(truncation.lsn)) };
  let afterCrash = expectation();

  const open = (): void => {
    opening = true;
    const openedIn = generation;
    Wal.openFiles(disk.mount(), LIMITS).then(
      ({ wal: opened, report }) => {
        if (openedIn !== generation) return;
        opening = false;
        if (report.tornTail !== null) stats.tornTails++;
        failure ??= checkRecovered(opened, afterCrash.candidate, afterCrash.required);
        const recovered = afterCrash.candidate.slice(0, Number(opened.lastLsn));
        log = [...recovered];
        durableCount = recovered.length;
        term = (recovered[recovered.length - 1]?.term ?? 0n) + 1n;
        wal = opened;
      },
      (err: unknown) => {
        failure ??= `open failed: ${String(err)}`;
      },
    );
  };

  const crash = (): void => {
    afterCrash = wal !== null ? expectation() : afterCrash;
    stats.segmentRolls += wal?.stats.segmentsCreated ?? 0;
    disk.crash();
    generation++;
    stats.crashes++;
    wal = null;
    opening = false;
    truncation = null;
  };

  const append = (running: Wal): void => {
    const count = 1 + Math.floor(random() * 6);
    for (let i = 0; i < count; i++) {
      const entry = testEntry(running.lastLsn + 1n, random, 10 + Math.floor(random() * 400), term);
      try {
        const appendedIn = generation;
        void running.append(entry, encodeEntryPayload(entry)).then(() => {
          if (appendedIn !== generation) return;
          durableCount = Math.max(durableCount, Number(entry.lsn));
          stats.acknowledged++;
        });
        log.push(entry);
      } catch {
        return; // the append queue is full: the group commit in flight must finish first
      }
    }
  };

  const truncate = (running: Wal): void => {
    const lastLsn = running.lastLsn;
    const lsn = lastLsn - BigInt(Math.floor(random() * Math.min(Number(lastLsn) + 1, 40)));
    const started: Truncation = { lsn, before: [...log] };
    truncation = started;
    stats.truncations++;
    const truncatedIn = generation;
    running.truncateAfter(lsn).then(
      () => {
        if (truncatedIn !== generation) return;
        log = log.slice(0, Number(lsn));
        durableCount = Math.min(durableCount, Number(lsn));
        truncation = null;
        term++;
      },
      (err: unknown) => {
        failure ??= `truncateAfter(${lsn}) failed: ${String(err)}`;
      },
    );
  };

  for (let step = 0; step < STEPS_PER_SEED && failure === null; step++) {
    const running: Wal | null = wal;
    if (running === null && !opening) open();
    const choice = random();
    if (choice < 0.03) {
      crash();
    } else if (running !== null && truncation === null && choice < 0.25) {
      append(running);
    } else if (running !== null && truncation === null && choice < 0.27 && running.lastLsn > 0n) {
      truncate(running);
    } else {
      disk.completeNext();
    }
    await tick();
  }
  if (failure === null) {
    // Always end with a crash and a recovery, so every seed checks at least one.
    crash();
    open();
    for (let i = 0; i < 1000 && opening && failure === null; i++) {
      disk.completeNext();
      await tick();
    }
    if (opening && failure === null) failure = "the final recovery did not finish";
  }
  return { failure: failure === null ? null : `seed ${seed}: ${failure}`, ...stats };
}

/** Null when `wal` recovered a prefix of `candidate` of at least `required` entries, intact; else what is wrong. */
function checkRecovered(wal: Wal, candidate: readonly LogEntry[], required: number): string | null {
  const lastLsn = Number(wal.lastLsn);
  if (lastLsn < required) return `recovery lost acknowledged entries: the log ends at ${lastLsn}, ${required} were durable`;
  if (lastLsn > candidate.length) return `recovery found ${lastLsn} entries, only ${candidate.length} were ever written`;
  const recovered: LogEntry[] = [];
  while (recovered.length < lastLsn) {
    const batch = wal.readRangeSync(BigInt(recovered.length + 1), wal.lastLsn, 1 << 20, 1000);
    if (batch.length === 0) return `recovered log unreadable from LSN ${recovered.length + 1}`;
    recovered.push(...batch);
  }
  for (let i = 0; i < recovered.length; i++) {
    if (!sameBytes(recovered[i]!, candidate[i]!)) return `recovered LSN ${i + 1} differs from the entry written there`;
  }
  return null;
}

describe("Wal under crashes (simulated files)", () => {
  it(
    `keeps every acknowledged append and only a prefix of what was written, over ${SEEDS} seeds`,
    async () => {
      const failures: string[] = [];
      const totals = { crashes: 0, acknowledged: 0, truncations: 0, segmentRolls: 0, tornTails: 0 };
      for (let seed = SEED_FIRST; seed < SEED_FIRST + SEEDS; seed++) {
        const result = await runSeed(seed);
        if (result.failure !== null) failures.push(result.failure);
        totals.crashes += result.crashes;
        totals.acknowledged += result.acknowledged;
        totals.truncations += result.truncations;
        totals.segmentRolls += result.segmentRolls;
        totals.tornTails += result.tornTails;
      }
      expect(failures.slice(0, 5)).toEqual([]);
      if (SEEDS < 50) return;
      // The schedule must reach what it is meant to test.
      expect(totals.crashes).toBeGreaterThan(SEEDS * 2);
      expect(totals.acknowledged).toBeGreaterThan(SEEDS * 20);
      expect(totals.truncations).toBeGreaterThan(SEEDS / 2);
      expect(totals.segmentRolls).toBeGreaterThan(SEEDS);
      expect(totals.tornTails).toBeGreaterThan(SEEDS / 2);
    },
    60_000 + SEEDS * 1000,
  );
});
