// Times in a container's log: nanoseconds since the Unix epoch (a bigint), written as Docker's
// `logs -t` writes them (RFC 3339 with nine fractional digits, UTC), and read back from what
// `--since` accepts (Docker's forms: RFC 3339, a date, Unix seconds, or a Go duration before now).
import { UsageError } from "../errors/errors.ts";

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

/** Now, in nanoseconds (microsecond resolution: what performance.now() gives). */
export function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

/** Go's RFC3339NanoFixed in UTC, as `docker logs -t` prints: 2006-01-02T15:04:05.000000000Z. */
export function formatTime(ns: bigint): string {
  const ms = ns / NS_PER_MS;
  const iso = new Date(Number(ms)).toISOString(); // 2006-01-02T15:04:05.000Z
  const frac = (((ns % NS_PER_S) + NS_PER_S) % NS_PER_S).toString().padStart(9, "0");
  return `${iso.slice(0, 19)}.${frac}Z`;
}

/** Go's time.ParseDuration units, in nanoseconds. */
const UNITS: Record<string, number> = { ns: 1, us: 1e3, "µs": 1e3, "μs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** A Go duration ("10m", "1h30m", "1.5s", "300ms"), in nanoseconds; undefined if it is not one. */
export function parseDuration(text: string): bigint | undefined {
  const m = /^([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(text);
  if (!m) return undefined;
  let total = 0;
  for (const [, num, unit] of m[2]!.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) total += Number(num) * UNITS[unit!]!;
  const ns = BigInt(Math.round(total));
  return m[1] === "-" ? -ns : ns;
}

/** Milliseconds of a local wall-clock time, as Go's time.ParseInLocation(layout, value, time.Local). */
function localMs(y: number, mo: number, d: number, h = 0, mi = 0, s = 0): number {
  return new Date(y, mo - 1, d, h, mi, s).getTime();
}

/**
 * A point in time as `docker logs --since` reads it, in nanoseconds:
 *   2013-01-02T13:23:37Z, 2013-01-02T13:23:37.5+01:00   RFC 3339 (fraction optional)
 *   2013-01-02T13:23:37, 2013-01-02                     local time
 *   1360000000, 1360000000.5                            Unix seconds
 *   10m, 1h30m, 90s                                     that long before now
 */
export function parseTime(value: string, flag: string, now = nowNs()): bigint {
  const bad = () =>
    new UsageError(`invalid ${flag} "${value}": give a time (2006-01-02T15:04:05Z, 2006-01-02), Unix seconds (1136214245) or a duration before now (10m, 1h30m)`);
  if (value !== "0") {
    const d = parseDuration(value);
    if (d !== undefined) return now - d;
  }
  const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(value);
  if (unix) return BigInt(unix[1]!) * NS_PER_S + BigInt((unix[2] ?? "").padEnd(9, "0") || "0");
  const t = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?$/.exec(value);
  if (!t) throw bad();
  const [y, mo, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(t[i] ?? 0)) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) throw bad();
  const frac = BigInt((t[7] ?? "").padEnd(9, "0") || "0");
  let ms: number;
  const zone = t[8];
  if (zone === undefined) {
    ms = localMs(y, mo, d, h, mi, s);
  } else {
    ms = Date.UTC(y, mo - 1, d, h, mi, s);
    if (zone !== "Z") {
      const sign = zone[0] === "-" ? -1 : 1;
      ms -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
    }
  }
  if (!Number.isFinite(ms)) throw bad();
  return BigInt(ms) * NS_PER_MS + frac;
}
