import { readFileSync } from "node:fs";

/**
 * How busy the whole machine's CPUs were over the measured phase, from
 * Linux's /proc/stat. The services, the load generator and anything else on
 * the machine share the cores, and the LogPlayer delay is mostly time spent
 * waiting for one; `stealPercent` shows a hypervisor taking time from this
 * VM. Printing it makes runs taken at different times comparable.
 */
export interface MachineCpuSummary {
  /** user + nice + system + irq + softirq, as a share of all CPU time. */
  busyPercent: number;
  userPercent: number;
  systemPercent: number;
  iowaitPercent: number;
  stealPercent: number;
}

/** The aggregate "cpu" line of /proc/stat, in clock ticks. */
export interface CpuTicks {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
}

/** Parses the aggregate "cpu " line; null when there is none (not Linux, or an unexpected format). Pure. */
export function parseProcStat(text: string): CpuTicks | null {
  const line = text.split("\n").find((l) => l.startsWith("cpu "));
  if (line === undefined) return null;
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  if (fields.length < 8 || fields.slice(0, 8).some((n) => !Number.isFinite(n) || n < 0)) return null;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return { user, nice, system, idle, iowait, irq, softirq, steal };
}

/** The shares of CPU time between two readings; null when no time passed. Pure. */
export function summarizeCpu(before: CpuTicks, after: CpuTicks): MachineCpuSummary | null {
  const delta = (field: keyof CpuTicks): number => after[field] - before[field];
  const fields: (keyof CpuTicks)[] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
  if (fields.some((field) => delta(field) < 0)) return null;
  const total = fields.reduce((sum, field) => sum + delta(field), 0);
  if (total <= 0) return null;
  const percent = (ticks: number): number => (100 * ticks) / total;
  return {
    busyPercent: percent(delta("user") + delta("nice") + delta("system") + delta("irq") + delta("softirq")),
    userPercent: percent(delta("user") + delta("nice")),
    systemPercent: percent(delta("system") + delta("irq") + delta("softirq")),
    iowaitPercent: percent(delta("iowait")),
    stealPercent: percent(delta("steal")),
  };
}

/** This machine's counters now, or null where /proc/stat cannot be read. */
export function readCpuTicks(): CpuTicks | null {
  try {
    return parseProcStat(readFileSync("/proc/stat", "utf8"));
  } catch {
    return null;
  }
}
