import { readFileSync } from "node:fs";

/**
 * CPU time of each process the benchmark started, from Linux's
 * /proc/<pid>/stat (utime + stime, every thread of the process), in clock
 * ticks of USER_HZ: 100 on every Linux architecture Node runs on (the kernel's
 * ABI, what `getconf CLK_TCK` prints), so one tick is 10 ms.
 */
export const CLOCK_TICKS_PER_S = 100;

/** utime + stime in ticks from the text of /proc/<pid>/stat; null when it does not parse. Pure. */
export function parseProcessStat(text: string): number | null {
  // The command name (field 2) is in parentheses and may hold spaces: split after its closing one.
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const fields = text
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime) || utime < 0 || stime < 0) return null;
  return utime + stime;
}

export function readProcessTicks(pid: number): number | null {
  try {
    return parseProcessStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return null;
  }
}

export interface ProcessCpu {
  name: string;
  /** CPU seconds over the measured phase. */
  cpuS: number;
  /** Average cores busy over the measured phase. */
  cores: number;
  /** CPU ms per acknowledged transaction. */
  msPerTxn: number;
}

/** Per-process CPU between two readings (processes missing from either are left out). Pure. */
export function summarizeProcessCpu(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
  elapsedS: number,
  transactions: number,
): ProcessCpu[] {
  const rows: ProcessCpu[] = [];
  for (const [name, ticksAfter] of after) {
    const ticksBefore = before.get(name);
    if (ticksBefore === undefined || ticksAfter < ticksBefore) continue;
    const cpuS = (ticksAfter - ticksBefore) / CLOCK_TICKS_PER_S;
    rows.push({
      name,
      cpuS,
      cores: elapsedS > 0 ? cpuS / elapsedS : 0,
      msPerTxn: transactions > 0 ? (1000 * cpuS) / transactions : 0,
    });
  }
  return rows;
}
