import { afterEach, describe, expect, it, vi } from 'vitest';
import { Pool, type PoolOptions } from '../../../src/pool/pool.js';
import { ErrorCodes, SwitchyardError } from '../../../src/errors.js';
import { fakeFactory, flush, type Conn } from './fake-factory.js';

const base: PoolOptions = { size: 2, minIdle: 0, acquireTimeoutMs: 1000, idleTimeoutMs: 60_000, name: 'main/pg1/app/db' };
const pools: Pool<Conn>[] = [];

function pool(f: ReturnType<typeof fakeFactory>, opts: Partial<PoolOptions> = {}, clock?: { now(): number }): Pool<Conn> {
  const p = new Pool(f.factory, { ...base, ...opts }, clock);
  pools.push(p);
  return p;
}

afterEach(() => {
  for (const p of pools.splice(0)) p.close();
  vi.useRealTimers();
});

describe('Pool: acquire and release', () => {
  it('creates up to size, then reuses released connections newest first', async () => {
    const f = fakeFactory();
    const p = pool(f);
    const a = await p.acquire();
    const b = await p.acquire();
    expect(a).not.toBe(b);
    expect(p.stats()).toEqual({ active: 2, idle: 0, waiting: 0, connecting: 0, total: 2 });
    p.release(a);
    p.release(b);
    expect(p.stats()).toEqual({ active: 0, idle: 2, waiting: 0, connecting: 0, total: 2 });
    expect(await p.acquire()).toBe(b);
    expect(await p.acquire()).toBe(a);
    expect(f.attempts()).toBe(2);
  });

  it('counts a create in flight as connecting', async () => {
    const f = fakeFactory({ manual: true });
    const p = pool(f);
    const pending = p.acquire();
    expect(p.stats()).toMatchObject({ connecting: 1, total: 1, active: 0 });
    f.finish();
    const c = await pending;
    expect(p.stats()).toMatchObject({ connecting: 0, active: 1, total: 1 });
    p.release(c);
  });

  it('prefers a matching idle connection, else the newest', async () => {
    const f = fakeFactory();
    const p = pool(f, { size: 3 });
    const [a, b, c] = [await p.acquire(), await p.acquire(), await p.acquire()];
    a.tag = 'x';
    for (const k of [a, b, c]) p.release(k);
    expect(await p.acquire({ prefer: (k) => k.tag === 'x' })).toBe(a);
    expect(await p.acquire({ prefer: (k) => k.tag === 'nothing' })).toBe(c);
  });

  it('double release, release after discard and release of a stranger are no-ops', async () => {
    const f = fakeFactory();
    const p = pool(f);
    const c = await p.acquire();
    p.release(c);
    p.release(c);
    expect(p.stats()).toMatchObject({ idle: 1, active: 0, total: 1 });
    // Had the double release queued c twice, the next two acquires would both get it.
    const x = await p.acquire();
    const y = await p.acquire();
    expect(x).not.toBe(y);
    p.discard(x);
    p.release(x);
    p.release({ id: 99, destroyed: 0 });
    expect(p.stats()).toMatchObject({ idle: 0, active: 1, total: 1 });
    expect(x.destroyed).toBe(1);
  });
});

describe('Pool: waiting', () => {
  it('a double release while someone waits does not take the connection back from them', async () => {
    const f = fakeFactory();
    const p = pool(f, { size: 1 });
    const c = await p.acquire();
    const waiting = p.acquire();
    p.release(c); // handed straight to the waiter
    p.release(c); // the old holder's duplicate
    p.discard(c); // and a confused late discard
    expect(p.stats()).toMatchObject({ active: 1, idle: 0, waiting: 0 });
    expect(await waiting).toBe(c);
    expect(c.destroyed).toBe(0);
    // The new holder's own release counts.
    p.release(c);
    expect(p.stats()).toMatchObject({ active: 0, idle: 1 });
  });

  it('a new holder may release in the same turn it receives the connection', async () => {
    const f = fakeFactory();
    const p = pool(f, { size: 1 });
    const c = await p.acquire();
    const releasedAtOnce = p.acquire().then((x) => p.release(x));
    p.release(c);
    await releasedAtOnce;
    expect(p.stats()).toMatchObject({ active: 0, idle: 1 });
  });

  it('times out a waiter with POOL_TIMEOUT naming the pool, its size and the wait', async () => {
    vi.useFakeTimers();
    const f = fakeFactory();
    const p = pool(f, { size: 1, acquireTimeoutMs: 5000 });
    await p.acquire();
    const waiting = p.acquire();
    const outcome = waiting.then(
      () => 'resolved',
      (e: SwitchyardError) => e,
    );
    await vi.advanceTimersByTimeAsync(4999);
    expect(p.stats().waiting).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const err = await outcome;
    expect(err).toBeInstanceOf(SwitchyardError);
    expect(err).toMatchObject({ code: ErrorCodes.POOL_TIMEOUT });
    expect((err as SwitchyardError).message).toMatch(/main\/pg1\/app\/db.*size 1.*5000ms/);
    expect(p.stats().waiting).toBe(0);
  });

  it('serves waiters first come, first served; a newcomer does not jump the queue', async () => {
    const f = fakeFactory();
    const p = pool(f, { size: 1 });
    const c = await p.acquire();
    const order: string[] = [];
    const w1 = p.acquire().then((x) => (order.push('w1'), x));
    const w2 = p.acquire().then((x) => (order.push('w2'), x));
    const w3 = p.acquire().then((x) => (order.push('w3'), x));
    p.release(c);
    expect(await w1).toBe(c);
    const late = p.acquire().then((x) => (order.push('late'), x));
    p.release(c);
    p.release(await w2);
    p.release(await w3);
    await late;
    expect(order).toEqual(['w1', 'w2', 'w3', 'late']);
    expect(f.attempts()).toBe(1);
  });

  it('an aborted signal removes the waiter; the next release goes idle', async () => {
    const f = fakeFactory();
    const p = pool(f, { size: 1 });
    const c = await p.acquire();
    const ac = new AbortController();
    const waiting = p.acquire({ signal: ac.signal });
    expect(p.stats().waiting).toBe(1);
    ac.abort();
    await expect(waiting).rejects.toBeInstanceOf(SwitchyardError);
    expect(p.stats().waiting).toBe(0);
    p.release(c);
    expect(p.stats()).toMatchObject({ idle: 1, active: 0 });
  });

  it('an abort reason that is a SwitchyardError is the rejection', async () => {
    const f = fakeFactory();
    const p = pool(f, { size: 1 });
    await p.acquire();
    const ac = new AbortController();
    const waiting = p.acquire({ signal: ac.signal });
    const reason = new SwitchyardError(ErrorCodes.SHUTTING_DOWN, 'bye');
    ac.abort(reason);
    await expect(waiting).rejects.toBe(reason);
  });

  it('an already aborted signal rejects at once without creating', async () => {
    const f = fakeFactory();
    const p = pool(f);
    await expect(p.acquire({ signal: AbortSignal.abort() })).rejects.toBeInstanceOf(SwitchyardError);
    expect(f.attempts()).toBe(0);
    expect(p.stats().total).toBe(0);
  });

  it('a connection created for a requester who gave up stays in the pool', async () => {
    const f = fakeFactory({ manual: true });
    const p = pool(f, { size: 1 });
    const ac = new AbortController();
    const pending = p.acquire({ signal: ac.signal });
    ac.abort();
    f.finish();
    await expect(pending).rejects.toBeInstanceOf(SwitchyardError);
    expect(p.stats()).toMatchObject({ idle: 1, active: 0, connecting: 0 });
    expect(await p.acquire()).toBe(f.created[0]);
  });
});

describe('Pool: failures and discard', () => {
  it('a failed create rejects that acquire with BACKEND_CONNECT_FAILED and frees the slot', async () => {
    let failing = true;
    const cause = new Error('connect ECONNREFUSED 127.0.0.1:1');
    const f = fakeFactory({ fail: () => (failing ? cause : undefined) });
    const p = pool(f, { size: 1 });
    const err = await p.acquire().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCodes.BACKEND_CONNECT_FAILED, cause });
    expect((err as Error).message).toContain('ECONNREFUSED');
    expect(p.stats().total).toBe(0);
    failing = false;
    await expect(p.acquire()).resolves.toMatchObject({ id: 1 });
  });

  it('passes a SwitchyardError from the factory through unchanged', async () => {
    const authFailed = new SwitchyardError(ErrorCodes.BACKEND_AUTH_FAILED, 'password authentication failed');
    const f = fakeFactory({ fail: () => authFailed });
    const p = pool(f, { size: 1 });
    await expect(p.acquire()).rejects.toBe(authFailed);
  });

  it('a failed create lets the first waiter make its own attempt', async () => {
    const f = fakeFactory({ manual: true });
    const p = pool(f, { size: 1 });
    const first = p.acquire();
    const second = p.acquire();
    expect(p.stats()).toMatchObject({ connecting: 1, waiting: 1 });
    f.finish(new Error('refused'));
    await expect(first).rejects.toMatchObject({ code: ErrorCodes.BACKEND_CONNECT_FAILED });
    expect(p.stats()).toMatchObject({ connecting: 1, waiting: 0 });
    f.finish();
    const conn = await second;
    expect(conn).toBe(f.created[0]);
  });

  it('discard destroys, frees the slot and lets a waiter get a new connection', async () => {
    const f = fakeFactory();
    const p = pool(f, { size: 1 });
    const c = await p.acquire();
    const waiting = p.acquire();
    p.discard(c);
    const d = await waiting;
    expect(d).not.toBe(c);
    expect(f.destroyed).toEqual([c]);
    p.discard(c);
    expect(c.destroyed).toBe(1);
  });

  it('discard of an idle connection removes it', async () => {
    const f = fakeFactory();
    const p = pool(f);
    const c = await p.acquire();
    p.release(c);
    p.discard(c);
    expect(p.stats()).toMatchObject({ idle: 0, total: 0 });
    expect(await p.acquire()).not.toBe(c);
  });
});

describe('Pool: drain and close', () => {
  it('drain refuses waiters, waits for lent connections and destroys everything', async () => {
    const f = fakeFactory();
    const p = pool(f, { size: 2 });
    const a = await p.acquire();
    const b = await p.acquire();
    p.release(b);
    expect(await p.acquire()).toBe(b);
    const waiter = p.acquire();
    let drained = false;
    const d = p.drain().then(() => (drained = true));
    expect(p.drain()).toBe(p.drain());
    await expect(waiter).rejects.toMatchObject({ code: ErrorCodes.POOL_CLOSED });
    await expect(p.acquire()).rejects.toMatchObject({ code: ErrorCodes.POOL_CLOSED });
    p.release(a);
    await flush();
    expect(drained).toBe(false);
    expect(a.destroyed).toBe(1);
    p.release(b);
    await d;
    expect(f.created.map((c) => c.destroyed)).toEqual([1, 1]);
    expect(p.stats().total).toBe(0);
  });

  it('drain of an idle pool resolves at once', async () => {
    const f = fakeFactory();
    const p = pool(f);
    p.release(await p.acquire());
    await p.drain();
    expect(f.created[0]!.destroyed).toBe(1);
  });

  it('drain waits for a create in flight and destroys what it brings', async () => {
    const f = fakeFactory({ manual: true });
    const p = pool(f, { size: 1 });
    const pending = p.acquire();
    let drained = false;
    const d = p.drain().then(() => (drained = true));
    await flush();
    expect(drained).toBe(false);
    f.finish();
    await expect(pending).rejects.toMatchObject({ code: ErrorCodes.POOL_CLOSED });
    await d;
    expect(f.created[0]!.destroyed).toBe(1);
  });

  it('close destroys idle connections, rejects waiters and destroys lent ones on release', async () => {
    const f = fakeFactory();
    const p = pool(f, { size: 2 });
    const a = await p.acquire();
    const b = await p.acquire();
    p.release(b);
    expect(await p.acquire()).toBe(b);
    const waiter = p.acquire();
    p.release(b); // straight to the waiter
    expect(await waiter).toBe(b);
    const waiter2 = p.acquire();
    p.close();
    await expect(waiter2).rejects.toMatchObject({ code: ErrorCodes.POOL_CLOSED, message: expect.stringContaining('main/pg1/app/db') });
    expect(a.destroyed + b.destroyed).toBe(0);
    p.release(a);
    p.discard(b);
    expect([a.destroyed, b.destroyed]).toEqual([1, 1]);
    await expect(p.acquire()).rejects.toMatchObject({ code: ErrorCodes.POOL_CLOSED });
  });

  it('close aborts a create in flight', async () => {
    const f = fakeFactory({ manual: true });
    const p = pool(f, { size: 1 });
    const pending = p.acquire();
    p.close();
    expect(f.signals[0]!.aborted).toBe(true);
    await expect(pending).rejects.toMatchObject({ code: ErrorCodes.POOL_CLOSED });
    expect(p.stats().total).toBe(0);
  });
});

describe('Pool: idle reaping and resize', () => {
  it('reaps idle connections older than idleTimeout, oldest first, keeping minIdle', async () => {
    vi.useFakeTimers();
    let now = 0;
    const f = fakeFactory();
    const p = pool(f, { size: 4, minIdle: 1, idleTimeoutMs: 1000 }, { now: () => now });
    const cs = [await p.acquire(), await p.acquire(), await p.acquire(), await p.acquire()];
    p.release(cs[0]!);
    p.release(cs[1]!);
    p.release(cs[2]!);
    now = 900;
    p.release(cs[3]!); // fresh
    vi.advanceTimersByTime(500);
    expect(f.destroyed).toEqual([]);
    now = 1000;
    vi.advanceTimersByTime(500);
    // The three released at 0 are 1000ms old; the one released at 900 is kept anyway.
    expect(f.destroyed).toEqual([cs[0], cs[1], cs[2]]);
    now = 5000;
    vi.advanceTimersByTime(500);
    // minIdle keeps the last one however old.
    expect(p.stats()).toMatchObject({ idle: 1, total: 1 });
    expect(f.destroyed).toHaveLength(3);
  });

  it('idleTimeout 0 never reaps', async () => {
    vi.useFakeTimers();
    let now = 0;
    const f = fakeFactory();
    const p = pool(f, { idleTimeoutMs: 0 }, { now: () => now });
    p.release(await p.acquire());
    now = 1e9;
    vi.advanceTimersByTime(1e6);
    expect(p.stats().idle).toBe(1);
  });

  it('resize picks up a new idle timeout', async () => {
    vi.useFakeTimers();
    let now = 0;
    const f = fakeFactory();
    const p = pool(f, { idleTimeoutMs: 0 }, { now: () => now });
    p.release(await p.acquire());
    p.resize({ idleTimeoutMs: 1000 });
    now = 2000;
    vi.advanceTimersByTime(1000);
    expect(p.stats().idle).toBe(0);
  });

  it('growing serves waiters at once', async () => {
    const f = fakeFactory();
    const p = pool(f, { size: 1 });
    await p.acquire();
    const w1 = p.acquire();
    const w2 = p.acquire();
    p.resize({ size: 3 });
    expect(p.stats()).toMatchObject({ waiting: 0, connecting: 2 });
    await expect(Promise.all([w1, w2])).resolves.toHaveLength(2);
    expect(p.stats()).toMatchObject({ active: 3, total: 3 });
  });

  it('shrinking closes idle connections now and lent ones as they come back', async () => {
    const f = fakeFactory();
    const p = pool(f, { size: 4 });
    const [a, b, c, d] = [await p.acquire(), await p.acquire(), await p.acquire(), await p.acquire()];
    p.release(a);
    p.release(b);
    p.resize({ size: 1 });
    expect(p.stats()).toMatchObject({ idle: 0, active: 2, total: 2 });
    expect(f.destroyed).toEqual([a, b]);
    p.release(c); // still one over: closed
    expect(f.destroyed).toEqual([a, b, c]);
    p.release(d); // fits: kept
    expect(p.stats()).toMatchObject({ idle: 1, active: 0, total: 1 });
  });
});

describe('Pool: lingering holders give connections back to waiters', () => {
  it('a waiter asks the oldest lingering holder (once) to give its connection back, and gets it', async () => {
    const f = fakeFactory();
    const p = pool(f);
    const a = await p.acquire();
    const b = await p.acquire();
    const asked: string[] = [];
    expect(p.linger(a, () => { asked.push('a'); p.release(a); })).toBe(true);
    expect(p.linger(b, () => asked.push('b'))).toBe(true);
    const got = await p.acquire();
    expect(got).toBe(a);
    expect(asked).toEqual(['a']);
    // b's holder kept it for real: no longer asked.
    p.unlinger(b);
    const waiting = p.acquire();
    expect(asked).toEqual(['a']);
    p.release(b);
    expect(await waiting).toBe(b);
    expect(f.attempts()).toBe(2);
  });

  it('refuses to register while someone waits already; released or discarded connections are forgotten', async () => {
    const f = fakeFactory();
    const p = pool(f, { size: 1 });
    const a = await p.acquire();
    const waiting = p.acquire();
    expect(p.linger(a, () => undefined)).toBe(false);
    p.release(a);
    const again = await waiting;
    expect(again).toBe(a);
    const asked: number[] = [];
    expect(p.linger(a, () => asked.push(1))).toBe(true);
    p.discard(a);
    const next = await p.acquire();
    expect(asked).toEqual([]);
    expect(next).not.toBe(a);
  });
});
