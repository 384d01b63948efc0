import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../support/proxy.js';

/** Repeated failed logins from one address are slowed (src/frontend/pg/startup.ts authFailureDelay). */
const info = inject('pgCluster');
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startProxy({ nodes: info.nodes, user: info.users.app });
});
afterAll(async () => {
  await proxy?.stop();
});

async function timedLogin(user: string, password: string): Promise<{ ok: boolean; code?: string; message?: string; ms: number }> {
  const t0 = performance.now();
  const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, database: info.database, user, password });
  try {
    await c.connect();
    await c.end();
    return { ok: true, ms: performance.now() - t0 };
  } catch (e) {
    return { ok: false, code: (e as { code?: string }).code, message: String((e as Error).message), ms: performance.now() - t0 };
  }
}

describe('auth failure throttling', () => {
  it('failures from one address are answered ever later (0, 100, 200, 400 ms...), a success resets it, the password never shows in the error', async () => {
    const { user, password } = info.users.app;
    expect((await timedLogin(user, password)).ok).toBe(true); // start from a clean slate
    const fails = [];
    for (let i = 0; i < 4; i++) fails.push(await timedLogin(user, 'wrong-password-hunter2'));
    for (const f of fails) {
      expect(f).toMatchObject({ ok: false, code: '28P01' });
      expect(f.message).not.toContain('hunter2');
    }
    expect(fails[0]!.ms).toBeLessThan(90);
    expect(fails[1]!.ms).toBeGreaterThanOrEqual(95);
    expect(fails[2]!.ms).toBeGreaterThanOrEqual(195);
    expect(fails[3]!.ms).toBeGreaterThanOrEqual(395);
    // An unknown user counts the same way and is answered the same way.
    const ghost = await timedLogin('ghost_user', 'x');
    expect(ghost).toMatchObject({ ok: false, code: '28P01' });
    expect(ghost.ms).toBeGreaterThanOrEqual(795);
    expect((await timedLogin(user, password)).ok).toBe(true);
    expect((await timedLogin(user, 'wrong-again')).ms).toBeLessThan(90);
    console.log(`auth failure delays (ms): ${fails.map((f) => Math.round(f.ms)).join(', ')}, then ${Math.round(ghost.ms)}`);
  });
});
