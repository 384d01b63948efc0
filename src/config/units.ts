/**
 * Durations (`250ms`, `10s`, `1m`, `1h`, `0`) to milliseconds and sizes
 * (`512kB`, `16MB`, `1GB`, `100B`, a plain integer = bytes; k = 1024) to bytes.
 * Both return an error message instead of throwing.
 */
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_UNITS: Record<string, number> = { B: 1, kB: 1024, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

export function parseDuration(value: unknown): { ok: true; ms: number } | { ok: false; message: string } {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return { ok: true, ms: value };
  if (typeof value !== 'string') return { ok: false, message: `expected a duration like 250ms, 10s or 1m, got ${JSON.stringify(value)}` };
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
  if (!m || (m[2] === undefined && Number(m[1]) !== 0)) {
    return { ok: false, message: `invalid duration "${value}" (use a number with ms, s, m or h, e.g. 250ms, 10s, 1m)` };
  }
  return { ok: true, ms: Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']!) };
}

export function parseSize(value: unknown): { ok: true; bytes: number } | { ok: false; message: string } {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return { ok: true, bytes: value };
  if (typeof value !== 'string') return { ok: false, message: `expected a size like 512kB or 16MB, got ${JSON.stringify(value)}` };
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|kB|KB|MB|GB)?\s*$/.exec(value);
  if (!m) return { ok: false, message: `invalid size "${value}" (use a number with B, kB, MB or GB, e.g. 512kB, 16MB)` };
  return { ok: true, bytes: Math.round(Number(m[1]) * SIZE_UNITS[m[2] ?? 'B']!) };
}

/** The shortest exact text for a number of milliseconds (for docs and round trips). */
export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms !== 0 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export function formatSize(bytes: number): string {
  for (const [unit, n] of [['GB', 1024 ** 3], ['MB', 1024 ** 2], ['kB', 1024]] as const) {
    if (bytes !== 0 && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return `${bytes}B`;
}
