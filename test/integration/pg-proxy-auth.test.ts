import { afterAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../support/proxy.js';

/**
 * Authentication on both sides of the proxy: clients log in with SCRAM or MD5
 * (users[].auth); the proxy logs into the nodes with whatever each node asks
 * for (SCRAM, MD5, cleartext, trust). Failures are clear and uniform.
 */
const run = promisify(execFile);
const info = inject('pgCluster');
const proxies: RunningProxy[] = [];

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.stop()));
});

async function proxyFor(user: string, password: string, userAuth?: 'scram-sha-256' | 'md5'): Promise<RunningProxy> {
  const p = await startProxy({ nodes: info.nodes, user: { user, password }, userAuth });
  proxies.push(p);
  return p;
}

async function login(p: RunningProxy, user: string, password: string): Promise<{ ok: true; who: string } | { ok: false; code: string; message: string }> {
  const c = new pg.Client({ host: '127.0.0.1', port: p.port, user, password, database: info.database });
  try {
    await c.connect();
    const r = await c.query('SELECT current_user AS who');
    await c.end();
    return { ok: true, who: r.rows[0].who };
  } catch (e) {
    const err = e as { code?: string; message: string };
    return { ok: false, code: err.code ?? '', message: err.message };
  }
}

describe('client authentication', () => {
  it('SCRAM-SHA-256 (default): right password in; wrong password and unknown user both 28P01, same wording', async () => {
    const p = await proxyFor('app', 'app');
    expect(await login(p, 'app', 'app')).toEqual({ ok: true, who: 'app' });
    const wrong = await login(p, 'app', 'nope');
    const unknown = await login(p, 'ghost', 'nope');
    expect(wrong).toMatchObject({ ok: false, code: '28P01' });
    expect(unknown).toMatchObject({ ok: false, code: '28P01' });
    expect((wrong as { message: string }).message.replace('app', 'X')).toBe((unknown as { message: string }).message.replace('ghost', 'X'));
  });

  it('MD5 (users[].auth: md5): node-postgres and psql log in; a wrong password is 28P01', async () => {
    const p = await proxyFor('app', 'app', 'md5');
    expect(await login(p, 'app', 'app')).toEqual({ ok: true, who: 'app' });
    expect(await login(p, 'app', 'wrong')).toMatchObject({ ok: false, code: '28P01' });
    const r = await run('/usr/lib/postgresql/15/bin/psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(p.port), '-U', 'app', '-d', info.database, '-c', 'SELECT 42'], {
      env: { ...process.env, PGPASSWORD: 'app', PGSSLMODE: 'disable' },
    });
    expect(r.stdout.trim()).toBe('42');
  });
});

describe('backend authentication', () => {
  it.each([
    ['MD5', 'md5user', 'md5pw'],
    ['cleartext', 'plainuser', 'plainpw'],
    ['trust', 'trustuser', 'anything'],
  ])('%s: the proxy logs into every node as the user and runs reads and writes', async (_m, user, password) => {
    const p = await proxyFor(user, password);
    const c = new pg.Client({ host: '127.0.0.1', port: p.port, user, password, database: info.database });
    await c.connect();
    const ports = new Set<number>();
    for (let i = 0; i < 6; i++) ports.add((await c.query('SELECT inet_server_port() AS port, current_user AS u')).rows[0].port);
    const w = await c.query('SELECT inet_server_port() AS port FROM (SELECT txid_current()) t');
    await c.end();
    expect(ports.size).toBe(2); // both replicas served reads
    expect(w.rows[0].port).toBe(info.nodes[0]!.port);
  });

  it('a password the node rejects reaches the client as a clear error naming the node', async () => {
    // The proxy accepts the client (its users list has "ghost"), the nodes know no such login.
    const p = await startProxy({ nodes: info.nodes, user: info.users.app, moreUsers: [{ user: 'ghost', password: 'boo' }] });
    proxies.push(p);
    const r = await login(p, 'ghost', 'boo');
    expect(r.ok).toBe(false);
    expect((r as { message: string }).message).toMatch(/pg0|pg1|pg2/);
    expect((r as { message: string }).message).toMatch(/password authentication failed/);
  });
});
