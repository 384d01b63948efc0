import net from 'node:net';
import fc from 'fast-check';
import type { App } from '../../src/app.js';

/**
 * What the PostgreSQL and MySQL fuzzers share (issue 10, item 1): a lazy sampler
 * bounded by an input count, a worker pool, the driver that sends one input batch
 * on a socket and classifies the outcome, and the leak checks at the end. Used by
 * test/integration/hardening-*-fuzz.test.ts and bench/fuzz.ts.
 */

/**
 * Draws from `arb` (chunks of `chunk` values, seeds seed, seed+1, ...) until the
 * inputs counted by `size` reach `inputs`. Lazy: a million inputs are never in memory at once.
 */
export function* sampleUntil<T>(arb: fc.Arbitrary<T>, seed: number, inputs: number, size: (t: T) => number, chunk = 256): Generator<T> {
  let n = 0;
  for (let k = 0; n < inputs; k++) {
    for (const t of fc.sample(arb, { numRuns: chunk, seed: seed + k })) {
      if (n >= inputs) return;
      n += size(t);
      yield t;
    }
  }
}

/** Runs `fn` on every item, `width` at a time. */
export async function runPool<T>(items: Iterable<T>, width: number, fn: (item: T) => Promise<void>): Promise<void> {
  const it = items[Symbol.iterator]();
  await Promise.all(Array.from({ length: width }, async () => {
    for (let r = it.next(); !r.done; r = it.next()) await fn(r.value);
  }));
}

/**
 * answered: the marker came back; closed: the proxy closed first; cut: the client went quiet-
 * then-half-closed and the proxy closed after that (correct: it was waiting for bytes);
 * hung: not closed within closeMs of the half-close.
 */
export type Outcome = 'answered' | 'closed' | 'cut' | 'hung';

export interface DriveOptions {
  /** Stop waiting (and half-close) after this long without a byte from the proxy; 0: half-close with the write. */
  quietMs: number;
  /** After the half-close, the proxy must close within this. */
  closeMs: number;
  /** A string whose arrival means the batch was worked through. */
  marker?: string;
  /** Keep every byte received (default: only a tail long enough to find the marker). */
  keepAll?: boolean;
  /** Half-close after this long even if bytes keep coming (default 30s). */
  maxMs?: number;
}

/** Writes `bytes` on a connected socket and waits for the outcome. */
export function drive(s: net.Socket, bytes: Buffer, o: DriveOptions): Promise<{ outcome: Outcome; data: Buffer }> {
  return new Promise((resolve) => {
    const keep = o.marker ? Buffer.byteLength(o.marker) + 64 : 0;
    const got: Buffer[] = [];
    let tail = Buffer.alloc(0);
    let ended = false;
    let settled = false;
    let quiet: NodeJS.Timeout | undefined;
    let close: NodeJS.Timeout | undefined;
    const done = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(quiet);
      clearTimeout(close);
      clearTimeout(max);
      resolve({ outcome, data: o.keepAll ? Buffer.concat(got) : tail });
    };
    // The client is done: a proxy waiting for more bytes must now close.
    const end = () => {
      if (ended) return;
      ended = true;
      clearTimeout(quiet);
      s.end();
      close = setTimeout(() => done('hung'), o.closeMs);
    };
    const rearm = () => {
      clearTimeout(quiet);
      if (!ended && o.quietMs > 0) quiet = setTimeout(end, o.quietMs);
    };
    const max = setTimeout(end, o.maxMs ?? 30_000);
    s.on('data', (d: Buffer) => {
      if (o.keepAll) got.push(d);
      if (o.marker) {
        tail = Buffer.concat([tail.subarray(Math.max(0, tail.length - keep)), d]);
        if (tail.includes(o.marker)) return done('answered');
      }
      rearm();
    });
    s.on('error', () => undefined);
    s.on('close', () => done(ended ? 'cut' : 'closed'));
    s.write(bytes);
    if (o.quietMs === 0) end();
    else rearm();
  });
}

/** Counts per outcome, the inputs and connections of one phase, and samples of hung batches. */
export interface PhaseResult {
  phase: string;
  inputs: number;
  conns: number;
  answered: number;
  closed: number;
  cut: number;
  hung: string[];
  ms: number;
}

export function newPhase(phase: string): PhaseResult {
  return { phase, inputs: 0, conns: 0, answered: 0, closed: 0, cut: 0, hung: [], ms: 0 };
}

/** Runs `fn` on every item of the phase, `width` at a time, and records how long it took. */
export async function runPhase<R extends PhaseResult, T>(r: R, items: Iterable<T>, width: number, fn: (item: T) => Promise<void>): Promise<R> {
  const t0 = Date.now();
  await runPool(items, width, fn);
  r.ms = Date.now() - t0;
  return r;
}

export function tally(r: PhaseResult, outcome: Outcome, batch: () => Buffer): void {
  if (outcome === 'hung') r.hung.push(batch().subarray(0, 200).toString('hex'));
  else r[outcome]++;
}

export function describePhase(r: PhaseResult): string {
  return `${r.inputs} inputs over ${r.conns} connections (${r.answered} answered, ${r.closed} closed by the proxy, ${r.cut} closed after the client's half-close, ${r.hung.length} hung) in ${r.ms} ms`;
}

interface PoolNode { name: string; pool: { active: number; idle: number; waiting: number } }
const poolNodes = (app: App) => (app.status() as unknown as { clusters: { nodes: PoolNode[] }[] }).clusters.flatMap((c) => c.nodes);

/** Backend connections lent to sessions right now, over all nodes. */
export const activeNow = (app: App): number => poolNodes(app).reduce((a, n) => a + n.pool.active, 0);

/**
 * Per node: the app user's connections the node itself shows, minus what the pool counts
 * idle (`count` asks the node). Taken before the fuzzing (the monitoring connections) and
 * after it: equal when no connection leaked out of the pool's books.
 */
export async function unpooled(app: App, count: (node: string) => Promise<number>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of poolNodes(app)) out[n.name] = (await count(n.name)) - n.pool.idle;
  return out;
}

export interface LeakCheck {
  /** Pool connections still active (want 0). */
  active: number;
  /** Nodes whose connection count disagrees with the pool's idle count plus the baseline. */
  mismatched: string[];
  waitedMs: number;
}

/** Waits (up to `ms`) for 0 active and for every node's count to match the pool's books again. */
export async function checkLeaks(app: App, count: (node: string) => Promise<number>, baseline: Record<string, number>, ms = 10_000): Promise<LeakCheck> {
  const t0 = Date.now();
  for (;;) {
    const active = activeNow(app);
    const now = active === 0 ? await unpooled(app, count) : {};
    const mismatched = active === 0 ? Object.keys(baseline).filter((n) => now[n] !== baseline[n]).map((n) => `${n}: ${now[n]} unpooled, ${baseline[n]} before`) : [];
    if ((active === 0 && mismatched.length === 0) || Date.now() - t0 > ms) return { active, mismatched, waitedMs: Date.now() - t0 };
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Collects unhandled rejections while installed. */
export function watchUnhandled(): { errors: unknown[]; stop(): void } {
  const errors: unknown[] = [];
  const on = (e: unknown) => errors.push(e);
  process.on('unhandledRejection', on);
  return { errors, stop: () => process.off('unhandledRejection', on) };
}
