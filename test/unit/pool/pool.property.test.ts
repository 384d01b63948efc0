import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { Pool } from '../../../src/pool/pool.js';
import { ErrorCodes, isSwitchyardError } from '../../../src/errors.js';
import { fakeFactory, type Conn } from './fake-factory.js';

type Op =
  | { kind: 'acquire'; preferOdd: boolean }
  | { kind: 'acquireThenAbort' }
  | { kind: 'release'; index: number; twice: boolean }
  | { kind: 'discard'; index: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'resize'; size: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('acquire' as const), preferOdd: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('acquireThenAbort' as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), index: fc.nat(), twice: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('discard' as const), index: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 3000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('resize' as const), size: fc.integer({ min: 1, max: 4 }) }) },
);

/** Rejections an acquire may legitimately end with in this model. */
const EXPECTED_ERRORS: Set<string> = new Set([ErrorCodes.POOL_TIMEOUT, ErrorCodes.POOL_CLOSED, ErrorCodes.BACKEND_CONNECT_FAILED]);

afterEach(() => vi.useRealTimers());

describe('Pool properties', () => {
  it('keeps its invariants under random operation sequences', async () => {
    vi.useFakeTimers();
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { maxLength: 60 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        async (ops, size, failPattern) => {
          let now = 0;
          const f = fakeFactory({ fail: (attempt) => (failPattern[attempt % failPattern.length] ? new Error('refused') : undefined) });
          const p = new Pool(f.factory, { size, minIdle: 0, acquireTimeoutMs: 1000, idleTimeoutMs: 2000, name: 'prop' }, { now: () => now });
          let currentSize = size;
          const held: Conn[] = [];
          const released: Conn[] = [];
          const unexpected: unknown[] = [];
          const take = (promise: Promise<Conn>) =>
            promise.then(
              (c) => {
                // Never handed out twice, never handed out dead.
                if (held.includes(c) || c.destroyed > 0) unexpected.push(`bad hand-out of ${c.id}`);
                held.push(c);
              },
              (e: unknown) => {
                if (!isSwitchyardError(e) || !EXPECTED_ERRORS.has(e.code)) unexpected.push(e);
              },
            );
          try {
            for (const op of ops) {
              switch (op.kind) {
                case 'acquire':
                  void take(p.acquire(op.preferOdd ? { prefer: (c) => c.id % 2 === 1 } : {}));
                  break;
                case 'acquireThenAbort': {
                  const ac = new AbortController();
                  void take(p.acquire({ signal: ac.signal }));
                  await vi.advanceTimersByTimeAsync(0);
                  ac.abort();
                  break;
                }
                case 'release':
                case 'discard': {
                  if (held.length === 0) break;
                  const [c] = held.splice(op.index % held.length, 1);
                  if (op.kind === 'discard') p.discard(c!);
                  else {
                    p.release(c!);
                    if (op.twice) p.release(c!);
                    released.push(c!);
                  }
                  break;
                }
                case 'tick':
                  now += op.ms;
                  await vi.advanceTimersByTimeAsync(op.ms);
                  break;
                case 'resize':
                  currentSize = op.size;
                  p.resize({ size: op.size });
                  break;
              }
              await vi.advanceTimersByTimeAsync(0);
              const s = p.stats();
              expect(unexpected).toEqual([]);
              expect(s.active).toBe(held.length);
              expect(s.total).toBe(s.active + s.idle + s.connecting);
              // At most `size`, except lent connections over a size that just shrank:
              // those close as they come back, and nothing idle or new is added meanwhile.
              expect(s.total).toBeLessThanOrEqual(Math.max(currentSize, s.active));
              if (s.waiting > 0) expect(s.idle).toBe(0);
              for (const c of held) expect(c.destroyed).toBe(0);
              // Releasing again a connection released earlier and not lent now changes nothing.
              const stale = released.find((c) => !held.includes(c));
              if (stale) p.release(stale);
              expect(p.stats().active).toBe(held.length);
            }
          } finally {
            // A failing run must not leave its reaper behind for the next one.
            p.close();
          }
          // Closing and returning everything leaks nothing and destroys nothing twice.
          p.close();
          for (const c of held.splice(0)) p.release(c);
          await vi.advanceTimersByTimeAsync(10_000);
          expect(unexpected).toEqual([]);
          expect(p.stats()).toEqual({ active: 0, idle: 0, waiting: 0, connecting: 0, total: 0 });
          for (const c of f.created) expect(c.destroyed).toBe(1);
        },
      ),
      { numRuns: 300 },
    );
  });
});
