/**
 * Durations (`250ms`, `10s`, `1m`, `1h`, `0`) to milliseconds and sizes
 * (`512kB`, `16MB`, `1GB`, `100B`, a plain integer = bytes; k = 1024) to bytes.
 * Both return an error message instead of throwing, so the schema can report
 * the message against the key that holds the bad value.
 */
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, kB: 1024, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

const DURATION_HINT = 'use a number with ms, s, m or h, e.g. 250ms, 10s, 1m';
const SIZE_HINT = 'use a number with B, kB, MB or GB, e.g. 512kB, 16MB';

export type DurationResult = { ok: true; ms: number } | { ok: false; message: string };
export type SizeResult = { ok: true; bytes: number } | { ok: false; message: string };

/** A number (milliseconds) or a string such as `250ms`, `1.5s`, `1m`, `0`. */
export function parseDuration(value: unknown): DurationResult {
  if (typeof value === 'number') {
    // A bare number is taken as milliseconds (JSON/YAML users writing 250).
    if (!Number.isFinite(value) || value < 0) return { ok: false, message: `invalid duration ${value} (${DURATION_HINT})` };
    return { ok: true, ms: Math.round(value) };
  }
  if (typeof value !== 'string') return { ok: false, message: `expected a duration (${DURATION_HINT}), got ${describe(value)}` };
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
  // A unitless string other than 0 is refused: "10" could mean seconds or milliseconds.
  if (!m || (m[2] === undefined && Number(m[1]) !== 0)) return { ok: false, message: `invalid duration "${value}" (${DURATION_HINT})` };
  const ms = Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']!);
  if (!Number.isSafeInteger(ms)) return { ok: false, message: `duration "${value}" is too large` };
  return { ok: true, ms };
}

/** A non-negative integer (bytes) or a string such as `512kB`, `16MB`, `100B`, `100`. */
export function parseSize(value: unknown): SizeResult {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) return { ok: false, message: `invalid size ${value} (a whole number of bytes, or ${SIZE_HINT})` };
    return { ok: true, bytes: value };
  }
  if (typeof value !== 'string') return { ok: false, message: `expected a size (${SIZE_HINT}), got ${describe(value)}` };
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|kB|KB|MB|GB)?\s*$/.exec(value);
  if (!m) return { ok: false, message: `invalid size "${value}" (${SIZE_HINT})` };
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[m[2] ?? 'B']!);
  if (!Number.isSafeInteger(bytes)) return { ok: false, message: `size "${value}" is too large` };
  return { ok: true, bytes };
}

/** The shortest exact text for a number of milliseconds (docs, logs, round trips). */
export function formatDuration(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    const n = DURATION_UNITS[unit]!;
    if (ms !== 0 && ms % n === 0) return `${ms / n}${unit}`;
  }
  return `${ms}ms`;
}

/** The shortest exact text for a number of bytes. */
export function formatSize(bytes: number): string {
  for (const unit of ['GB', 'MB', 'kB'] as const) {
    const n = SIZE_UNITS[unit]!;
    if (bytes !== 0 && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return `${bytes}B`;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return JSON.stringify(value);
}
