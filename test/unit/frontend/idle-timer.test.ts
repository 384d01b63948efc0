import { describe, expect, it } from 'vitest';
import { IdleSweeper } from '../../../src/frontend/idle-timer.js';

/** The sweeper behind limits.client_idle_timeout, driven by a fake clock. */
function setup() {
  let now = 0;
  const sweeper = new IdleSweeper(250, () => now, false);
  const expired: number[] = [];
  const state = { timeout: 1000, idle: true };
  const handle = sweeper.watch({ timeoutMs: () => state.timeout, isIdle: () => state.idle, expire: (ms) => expired.push(ms) });
  return { sweeper, handle, expired, state, advance: (ms: number) => (now += ms) };
}

describe('IdleSweeper', () => {
  it('expires a session idle for the timeout, once, and stops watching it', () => {
    const t = setup();
    t.advance(999);
    t.sweeper.sweep();
    expect(t.expired).toEqual([]);
    t.advance(1);
    t.sweeper.sweep();
    expect(t.expired).toEqual([1000]);
    t.advance(5000);
    t.sweeper.sweep();
    expect(t.expired).toEqual([1000]);
    expect(t.sweeper.size).toBe(0);
  });

  it('activity restarts the idle period', () => {
    const t = setup();
    t.advance(900);
    t.handle.touch();
    t.advance(900);
    t.sweeper.sweep();
    expect(t.expired).toEqual([]);
    t.advance(100);
    t.sweeper.sweep();
    expect(t.expired).toEqual([1000]);
  });

  it('time spent busy (waiting for its own answer) is not idle time', () => {
    const t = setup();
    t.state.idle = false;
    t.advance(5000);
    t.sweeper.sweep();
    expect(t.expired).toEqual([]);
    t.state.idle = true;
    t.advance(999);
    t.sweeper.sweep();
    expect(t.expired).toEqual([]);
    t.advance(1);
    t.sweeper.sweep();
    expect(t.expired).toEqual([1000]);
  });

  it('0 means none, and a reload that sets a timeout applies to open sessions', () => {
    const t = setup();
    t.state.timeout = 0;
    t.advance(60_000);
    t.sweeper.sweep();
    expect(t.expired).toEqual([]);
    t.state.timeout = 30_000;
    t.sweeper.sweep();
    expect(t.expired).toEqual([60_000]);
  });

  it('a stopped session is never expired', () => {
    const t = setup();
    t.handle.stop();
    t.advance(10_000);
    t.sweeper.sweep();
    expect(t.expired).toEqual([]);
    expect(t.sweeper.size).toBe(0);
  });
});
