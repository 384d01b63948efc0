/**
 * The log of a chaos test's load (test/integration/hardening-*-chaos.test.ts): one entry per
 * statement or unit of work, with its client, kind, start and end (performance.now()) and
 * outcome; the protocols differ only in how an error is coded (SQLSTATE or errno).
 */
export interface ChaosOp {
  who: string;
  kind: string;
  t0: number;
  t1: number;
  ok: boolean;
  message?: string;
}

/** For each reader: ms from `since` to the end of its first successful read started after `since`; null if one has none. */
export function readRecovery(ops: readonly ChaosOp[], readers: readonly string[], since: number): number | null {
  let worst = 0;
  for (const who of readers) {
    const first = ops.find((o) => o.who === who && o.kind === 'read' && o.ok && o.t0 >= since);
    if (!first) return null;
    worst = Math.max(worst, first.t1 - since);
  }
  return worst;
}

/** "N units, E errors (kind:code×n, ...)" plus one line per error, for assertion messages and the figures. */
export function summarizeOps<O extends ChaosOp>(list: readonly O[], codeOf: (o: O) => string | number | undefined, unit: string): string {
  const errs = list.filter((o) => !o.ok);
  const codes = new Map<string, number>();
  for (const e of errs) codes.set(`${e.kind}:${codeOf(e)}`, (codes.get(`${e.kind}:${codeOf(e)}`) ?? 0) + 1);
  const detail = errs.map((e) => `    ${e.who} ${e.kind} ${codeOf(e)} after ${Math.round(e.t1 - e.t0)}ms: ${e.message}`).join('\n');
  return `${list.length} ${unit}, ${errs.length} errors${errs.length ? ` (${[...codes].map(([k, n]) => `${k}×${n}`).join(', ')})\n${detail}` : ''}`;
}

/** Polls `check` every 20 ms for up to `ms`: how long it took to hold (ms), or null if it never did. */
export async function timedUntil(check: () => boolean | Promise<boolean>, ms: number): Promise<number | null> {
  const t0 = performance.now();
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 20));
  }
  return (await check()) ? performance.now() - t0 : null;
}
