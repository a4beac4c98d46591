import { InvalidArgumentError } from "commander";

const BYTE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "0", "512MiB", "10GB", "1.5gib": a whole number of bytes, at most Number.MAX_SAFE_INTEGER. */
export function parseByteSize(name: string): (value: string) => number {
  return (value) => {
    const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(value.trim());
    const unit = BYTE_UNITS[match?.[2]?.toLowerCase() ?? "?"];
    if (match === null || unit === undefined) {
      throw new InvalidArgumentError(`${name} must be a size such as 0, 500MB or 10GiB, got "${value}"`);
    }
    const bytes = Math.floor(Number(match[1]) * unit);
    if (!Number.isSafeInteger(bytes)) throw new InvalidArgumentError(`${name} is too large: "${value}"`);
    return bytes;
  };
}

/** "0", "90s", "30m", "6h", "7d", "500ms": milliseconds. A bare number is seconds. */
export function parseDuration(name: string): (value: string) => number {
  return (value) => {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(value.trim());
    if (match === null) throw new InvalidArgumentError(`${name} must be a duration such as 0, 90s, 30m, 6h or 7d, got "${value}"`);
    const ms = Math.floor(Number(match[1]) * DURATION_UNITS_MS[match[2] ?? "s"]!);
    if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(`${name} is too large: "${value}"`);
    return ms;
  };
}
