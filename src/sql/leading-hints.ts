import type { Dialect, Hints } from './types.js';

/**
 * Routing hints from the comments that LEAD a text, before its first token:
 * `/* route=primary *\/`, `/* route=replica *\/`, `/* max_lag=500ms *\/`, or several
 * in one comment (`/* route=replica max_lag=2s *\/`, also comma-separated as
 * sqlcommenter writes them). Line comments count too. Unknown keys are ignored;
 * a later value of the same key wins. MySQL executable comments `/*!` are code,
 * not hints. Comments after the first token are never read: a hint must not be
 * smuggled in by a value or an inner statement.
 */
export function leadingHints(src: string, dialect: Dialect): Hints {
  const hints: Hints = {};
  const n = src.length;
  let p = 0;
  for (;;) {
    // 1. Skip whitespace.
    while (p < n && src.charCodeAt(p) <= 32) p++;
    if (p + 1 >= n) return hints;
    const c = src.charCodeAt(p);
    const c1 = src.charCodeAt(p + 1);
    // 2. A block comment: find its end (nested in PostgreSQL), read its body.
    if (c === 47 && c1 === 42) {
      const c2 = src.charCodeAt(p + 2);
      if (dialect === 'mysql' && (c2 === 33 || (c2 === 77 && src.charCodeAt(p + 3) === 33))) return hints;
      const end = blockCommentEnd(src, p, dialect);
      if (end < 0) return hints;
      readHints(src.slice(p + 2, end - 2), hints);
      p = end;
      continue;
    }
    // 3. A line comment.
    const dashes = c === 45 && c1 === 45 && (dialect === 'postgres' || p + 2 >= n || src.charCodeAt(p + 2) <= 32);
    const hash = c === 35 && dialect === 'mysql';
    if (dashes || hash) {
      let e = src.indexOf('\n', p);
      if (e < 0) e = n;
      readHints(src.slice(p + (hash ? 1 : 2), e), hints);
      p = e;
      continue;
    }
    return hints;
  }
}

/** Index just past the `*\/` closing the comment opened at p, or -1. */
function blockCommentEnd(src: string, p: number, dialect: Dialect): number {
  if (dialect === 'mysql') {
    const e = src.indexOf('*/', p + 2);
    return e < 0 ? -1 : e + 2;
  }
  let depth = 0;
  while (p < src.length - 1) {
    if (src.charCodeAt(p) === 47 && src.charCodeAt(p + 1) === 42) {
      depth++;
      p += 2;
    } else if (src.charCodeAt(p) === 42 && src.charCodeAt(p + 1) === 47) {
      p += 2;
      if (--depth === 0) return p;
    } else p++;
  }
  return -1;
}

const PAIR = /(?:^|[\s,;])(route|max_lag)\s*[=:]\s*'?([A-Za-z0-9.]+)'?/gi;

function readHints(body: string, hints: Hints): void {
  PAIR.lastIndex = 0;
  for (let m = PAIR.exec(body); m; m = PAIR.exec(body)) {
    const key = m[1]!.toLowerCase();
    const value = m[2]!.toLowerCase();
    if (key === 'route') {
      if (value === 'primary' || value === 'replica') hints.route = value;
    } else {
      const ms = parseDurationMs(value);
      if (ms !== undefined) hints.maxLagMs = ms;
    }
  }
}

/** `500ms`, `2s`, `1.5s`, `1m`; a bare number is milliseconds. */
export function parseDurationMs(value: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  return Math.round(n * (unit === 'm' ? 60_000 : unit === 's' ? 1000 : 1));
}
