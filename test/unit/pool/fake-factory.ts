import type { PoolFactory } from '../../../src/pool/pool.js';

export interface Conn {
  id: number;
  destroyed: number;
  tag?: string;
}

interface PendingCreate {
  resolve(): void;
  reject(err: unknown): void;
  signal: AbortSignal;
}

/**
 * A factory whose creates the test controls: by default each resolves on the
 * next microtask; with `manual` they wait until the test calls finish(). It
 * records every connection made and destroyed so tests can look for leaks and
 * double destroys.
 */
export function fakeFactory(opts: { manual?: boolean; fail?: (attempt: number) => unknown } = {}) {
  let attempts = 0;
  const created: Conn[] = [];
  const destroyed: Conn[] = [];
  const pending: PendingCreate[] = [];
  const signals: AbortSignal[] = [];
  const factory: PoolFactory<Conn> = {
    create: async (signal) => {
      const attempt = ++attempts;
      signals.push(signal);
      if (opts.manual) {
        await new Promise<void>((resolve, reject) => {
          const entry = { resolve, reject, signal };
          pending.push(entry);
          signal.addEventListener('abort', () => reject(new Error('aborted by pool')), { once: true });
        });
      } else {
        await Promise.resolve();
      }
      const failure = opts.fail?.(attempt);
      if (failure !== undefined) throw failure;
      const conn: Conn = { id: created.length + 1, destroyed: 0 };
      created.push(conn);
      return conn;
    },
    destroy: (conn) => {
      conn.destroyed++;
      destroyed.push(conn);
    },
  };
  return {
    factory,
    created,
    destroyed,
    signals,
    attempts: () => attempts,
    /** Let the oldest manual create finish (or fail with `err`). */
    finish(err?: unknown): void {
      const p = pending.shift();
      if (!p) throw new Error('no create in flight');
      if (err === undefined) p.resolve();
      else p.reject(err);
    },
  };
}

/** Let queued promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}
