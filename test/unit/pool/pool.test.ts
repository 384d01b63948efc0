import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { Pool } from '../../../src/pool/pool.js';
import { SwitchyardError } from '../../../src/errors.js';

interface Conn {
  id: number;
  destroyed: boolean;
  tag?: string;
}

function factory(opts: { fail?: () => boolean; delayMs?: number } = {}) {
  let next = 1;
  const destroyed: Conn[] = [];
  return {
    destroyed,
    f: {
      create: async () => {
        if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
        if (opts.fail?.()) throw new Error('connect refused');
        return { id: next++, destroyed: false } as Conn;
      },
      destroy: (c: Conn) => {
        c.destroyed = true;
        destroyed.push(c);
      },
    },
  };
}

const base = { size: 2, minIdle: 0, acquireTimeoutMs: 100, idleTimeoutMs: 60_000, name: 't' };

afterEach(() => vi.useRealTimers());

describe('Pool', () => {
  it('creates up to size, reuses released connections LIFO', async () => {
    const { f } = factory();
    const p = new Pool(f, base);
    const a = await p.acquire();
    const b = await p.acquire();
    expect(p.stats()).toMatchObject({ active: 2, idle: 0, total: 2 });
    p.release(a);
    p.release(b);
    expect(await p.acquire()).toBe(b);
    p.close();
  });

  it('times out a waiter with POOL_TIMEOUT naming the pool', async () => {
    const { f } = factory();
    const p = new Pool(f, { ...base, size: 1 });
    await p.acquire();
    await expect(p.acquire()).rejects.toMatchObject({ code: 'SWITCHYARD_POOL_TIMEOUT', message: expect.stringContaining('pool t') });
    expect(p.stats().waiting).toBe(0);
    p.close();
  });

  it('serves waiters in FIFO order', async () => {
    const { f } = factory();
    const p = new Pool(f, { ...base, size: 1, acquireTimeoutMs: 1000 });
    const c = await p.acquire();
    const order: number[] = [];
    const w1 = p.acquire().then((x) => (order.push(1), x));
    const w2 = p.acquire().then((x) => (order.push(2), x));
    p.release(c);
    p.release(await w1);
    await w2;
    expect(order).toEqual([1, 2]);
    p.close();
  });

  it('a failed create rejects that acquire with BACKEND_CONNECT_FAILED and frees the slot', async () => {
    let fail = true;
    const { f } = factory({ fail: () => fail });
    const p = new Pool(f, { ...base, size: 1 });
    await expect(p.acquire()).rejects.toMatchObject({ code: 'SWITCHYARD_BACKEND_CONNECT_FAILED' });
    fail = false;
    expect(p.stats().total).toBe(0);
    await expect(p.acquire()).resolves.toMatchObject({ id: 1 });
    p.close();
  });

  it('discard destroys and lets a waiter get a new connection', async () => {
    const { f, destroyed } = factory();
    const p = new Pool(f, { ...base, size: 1, acquireTimeoutMs: 1000 });
    const c = await p.acquire();
    const waiting = p.acquire();
    p.discard(c);
    const d = await waiting;
    expect(d.id).toBe(2);
    expect(destroyed).toEqual([c]);
    p.close();
  });

  it('double release and releasing a discarded connection are no-ops', async () => {
    const { f } = factory();
    const p = new Pool(f, base);
    const c = await p.acquire();
    p.release(c);
    p.release(c);
    expect(p.stats()).toMatchObject({ idle: 1, active: 0 });
    const c2 = await p.acquire();
    p.discard(c2);
    p.release(c2);
    expect(p.stats()).toMatchObject({ idle: 0, active: 0, total: 0 });
    p.close();
  });

  it('prefers a matching idle connection', async () => {
    const { f } = factory();
    const p = new Pool(f, { ...base, size: 3 });
    const [a, b, c] = [await p.acquire(), await p.acquire(), await p.acquire()];
    a.tag = 'x';
    [a, b, c].forEach((k) => p.release(k));
    expect(await p.acquire({ prefer: (k) => k.tag === 'x' })).toBe(a);
    p.close();
  });

  it('drain waits for lent connections and destroys everything; close rejects waiters', async () => {
    const { f, destroyed } = factory();
    const p = new Pool(f, { ...base, size: 1, acquireTimeoutMs: 5000 });
    const c = await p.acquire();
    const waiter = p.acquire();
    let drained = false;
    const d = p.drain().then(() => (drained = true));
    await expect(waiter).rejects.toBeInstanceOf(SwitchyardError);
    expect(drained).toBe(false);
    p.release(c);
    await d;
    expect(destroyed).toEqual([c]);
    await expect(p.acquire()).rejects.toMatchObject({ code: 'SWITCHYARD_POOL_CLOSED' });
  });

  it('reaps idle connections older than idleTimeout, keeping minIdle', async () => {
    vi.useFakeTimers();
    let now = 0;
    const { f, destroyed } = factory();
    const p = new Pool(f, { ...base, size: 3, minIdle: 1, idleTimeoutMs: 1000 }, { now: () => now });
    const cs = [await p.acquire(), await p.acquire(), await p.acquire()];
    cs.forEach((c) => p.release(c));
    now = 5000;
    vi.advanceTimersByTime(1000);
    expect(destroyed).toHaveLength(2);
    expect(p.stats().idle).toBe(1);
    p.close();
  });

  it('resize shrinks idle connections and grows to serve waiters', async () => {
    const { f } = factory();
    const p = new Pool(f, { ...base, size: 2, acquireTimeoutMs: 1000 });
    const a = await p.acquire();
    const b = await p.acquire();
    const waiting = p.acquire();
    p.resize({ size: 3 });
    await expect(waiting).resolves.toMatchObject({ id: 3 });
    p.release(a);
    p.release(b);
    p.resize({ size: 1 });
    expect(p.stats().total).toBeLessThanOrEqual(2);
    p.close();
  });

  it('keeps its invariants under random operation sequences (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom('acquire', 'release', 'discard'), { maxLength: 60 }), fc.integer({ min: 1, max: 4 }), async (ops, size) => {
        const { f } = factory();
        const p = new Pool(f, { ...base, size, acquireTimeoutMs: 5 });
        const held: Conn[] = [];
        for (const op of ops) {
          if (op === 'acquire') {
            const c = await p.acquire().catch(() => null);
            if (c) {
              expect(held).not.toContain(c);
              held.push(c);
            }
          } else if (held.length > 0) {
            const c = held.shift()!;
            if (op === 'release') p.release(c);
            else p.discard(c);
          }
          const s = p.stats();
          expect(s.active + s.idle + s.connecting).toBeLessThanOrEqual(size);
          expect(s.active).toBe(held.length);
        }
        p.close();
      }),
      { numRuns: 100 },
    );
  });
});
