import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import net from 'node:net';
import pg from 'pg';
import { msg } from '../../src/protocol/pg/index.js';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { superClient } from '../support/pg-stats.js';

/**
 * Pools and failures: cancel, acquire timeout, a client vanishing mid-transaction
 * or mid-query, a backend dying under a session, idle reaping, the read-only
 * listener, and FunctionCall (large objects). Checked at the backends where it matters.
 */
const run = promisify(execFile);
const info = inject('pgCluster');
const app = info.users.app;
const primaryPort = info.nodes[0]!.port;
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startProxy({
    nodes: info.nodes,
    user: app,
    readOnlyListener: true,
    clusterYaml: '    pool:\n      size: 2\n      acquire_timeout: 400ms\n      idle_timeout: 1s\n    routing:\n      consistency: eventual\n',
  });
  const c = await connect();
  await c.query('DROP TABLE IF EXISTS res_t; CREATE TABLE res_t (id int primary key)');
  await c.end();
});

afterAll(async () => {
  await proxy?.stop();
});

/** node-postgres's cancel(client, query), missing from @types/pg. */
function cancel(c: pg.Client, q: unknown): void {
  (new pg.Client({ host: '127.0.0.1', port: proxy.port }) as unknown as { cancel(c: pg.Client, q: unknown): void }).cancel(c, q);
}

async function connect(port = proxy.port): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: app.user, password: app.password, database: info.database });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function onPrimary<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  const s = await superClient(info, 'pg0', info.database);
  try {
    return (await s.query(sql, params)).rows as T[];
  } finally {
    await s.end();
  }
}

async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

describe('cancel', () => {
  it("node-postgres's cancel stops a long pg_sleep within a second; the session goes on", async () => {
    const c = await connect();
    const started = Date.now();
    const query = new pg.Query('SELECT pg_sleep(30)');
    const done = new Promise((resolve, reject) => {
      query.on('end', resolve);
      query.on('error', reject);
    });
    c.query(query);
    await new Promise((r) => setTimeout(r, 200));
    cancel(c, query);
    await expect(done).rejects.toMatchObject({ code: '57014' });
    expect(Date.now() - started).toBeLessThan(1500);
    expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
    await c.end();
  });

  it('a cancel for an idle client does nothing', async () => {
    const c = await connect();
    // A raw CancelRequest with the client's (proxy-made) key, sent while it is idle.
    const key = c as unknown as { processID: number; secretKey: number };
    await new Promise<void>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: proxy.port }, () => s.end(msg.cancelRequest(key.processID, key.secretKey)));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 200));
    expect((await c.query('SELECT 2 AS x')).rows).toEqual([{ x: 2 }]);
    await c.end();
  });
});

describe('pools', () => {
  it('an exhausted pool fails the statement after acquire_timeout with 53300, and recovers', async () => {
    const holders = [await connect(), await connect()];
    for (const h of holders) await h.query('BEGIN; INSERT INTO res_t VALUES (DEFAULT) ON CONFLICT DO NOTHING'.replace('DEFAULT', String(Math.floor(Math.random() * 1e9))));
    const c = await connect();
    const t0 = Date.now();
    await expect(c.query('INSERT INTO res_t VALUES (-1)')).rejects.toMatchObject({ code: '53300' });
    const waited = Date.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(350);
    expect(waited).toBeLessThan(2000);
    for (const h of holders) {
      await h.query('ROLLBACK');
      await h.end();
    }
    await c.query('INSERT INTO res_t VALUES (-1)');
    await c.query('DELETE FROM res_t WHERE id = -1');
    await c.end();
  });

  it("logins go on while the primary's pool is exhausted, with the primary's parameters (cached from an earlier login)", async () => {
    const first = await connect(); // a login when the pool is free: its ParameterStatus set is kept
    await first.end();
    const holders = [await connect(), await connect()];
    for (const h of holders) await h.query('BEGIN; SELECT 1 FROM res_t FOR UPDATE');
    const c = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: app.user, password: app.password, database: info.database });
    const reported = new Map<string, string>();
    (c as unknown as { connection: { on(e: string, f: (m: { parameterName: string; parameterValue: string }) => void): void } }).connection.on('parameterStatus', (m) => reported.set(m.parameterName, m.parameterValue));
    await c.connect();
    // Without the cache the login waits acquire_timeout on the primary's pool and then takes a
    // replica's parameters, which say in_hot_standby=on.
    expect(reported.get('in_hot_standby')).toBe('off');
    expect(reported.get('server_version')).toMatch(/^15\./);
    expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1); // a read, on a replica
    await c.end();
    for (const h of holders) {
      await h.query('ROLLBACK');
      await h.end();
    }
  });

  it('a client that vanishes inside a transaction: rolled back, its connection reused clean', async () => {
    const c = await connect();
    await c.query('BEGIN');
    await c.query('INSERT INTO res_t VALUES (4242)');
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    // The row never commits; and the pooled connections serve others with no open transaction.
    const ok = await until(async () => (await onPrimary<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'app' AND state LIKE 'idle in transaction%'"))[0]!.n === 0, 3000);
    expect(ok).toBe(true);
    expect(await onPrimary('SELECT id FROM res_t WHERE id = 4242')).toEqual([]);
    const d = await connect();
    for (let i = 0; i < 4; i++) await d.query('INSERT INTO res_t VALUES ($1) ON CONFLICT DO NOTHING', [9000 + i]);
    expect((await onPrimary<{ n: number }>('SELECT count(*)::int AS n FROM res_t WHERE id >= 9000'))[0]!.n).toBe(4);
    await d.end();
  });

  it('a client that vanishes mid-query: the query is cancelled on the server', async () => {
    const c = await connect();
    const q = c.query('SELECT pg_sleep(29.5) /* res-vanish */').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await q;
    const gone = await until(async () => (await onPrimary<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%res-vanish%' AND pid <> pg_backend_pid()"))[0]!.n === 0, 3000);
    // It may have run on a replica: check every node.
    for (const n of info.nodes) {
      const s = await superClient(info, n.name, 'postgres');
      const r = await s.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%res-vanish%' AND pid <> pg_backend_pid()");
      await s.end();
      expect(r.rows[0].n).toBe(0);
    }
    expect(gone).toBe(true);
  });

  it('idle backend connections are closed after idle_timeout', async () => {
    const c = await connect();
    for (let i = 0; i < 10; i++) await c.query('SELECT 1');
    await c.end();
    const count = async () => {
      let n = 0;
      for (const node of info.nodes) {
        const s = await superClient(info, node.name, 'postgres');
        const r = await s.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'app' AND datname = $1 AND application_name <> 'switchyard-monitor'", [info.database]);
        await s.end();
        n += r.rows[0].n;
      }
      return n;
    };
    expect(await count()).toBeGreaterThan(0);
    expect(await until(async () => (await count()) === 0, 4000)).toBe(true);
  });
});

describe('a backend that dies under a session', () => {
  it('a statement in flight gets 08006 and the session stays usable', async () => {
    const c = await connect();
    // A write (txid_current), so it is not retried elsewhere as an autocommit read would be.
    const q = c.query('SELECT pg_sleep(20), txid_current() /* res-die */').then(() => null, (e: { code?: string }) => e);
    await new Promise((r) => setTimeout(r, 300));
    for (const n of info.nodes) {
      const s = await superClient(info, n.name, 'postgres');
      await s.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%res-die%' AND pid <> pg_backend_pid()");
      await s.end();
    }
    expect(await q).toMatchObject({ code: '08006' });
    expect((await c.query('SELECT 3 AS x')).rows).toEqual([{ x: 3 }]);
    await c.end();
  });

  it('an idle transaction whose connection died: the next statement fails with 08006, then the session goes on', async () => {
    const c = await connect();
    await c.query('BEGIN');
    const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    await onPrimary('SELECT pg_terminate_backend($1)', [pid]);
    await new Promise((r) => setTimeout(r, 300));
    await expect(c.query('INSERT INTO res_t VALUES (777)')).rejects.toMatchObject({ code: '08006' });
    expect(await onPrimary('SELECT id FROM res_t WHERE id = 777')).toEqual([]);
    expect((await c.query('SELECT 4 AS x')).rows).toEqual([{ x: 4 }]);
    await c.end();
  });
});

describe('listen_read_only', () => {
  it('sends reads to replicas and lets a replica refuse a write (25006)', async () => {
    const c = await connect(proxy.roPort!);
    const ports = new Set<number>();
    for (let i = 0; i < 6; i++) ports.add((await c.query('SELECT inet_server_port() AS p')).rows[0].p);
    expect(ports.has(primaryPort)).toBe(false);
    expect(ports.size).toBe(2);
    await expect(c.query('INSERT INTO res_t VALUES (5)')).rejects.toMatchObject({ code: '25006' });
    await c.end();
  });
});

describe('FunctionCall', () => {
  it('psql \\lo_import and \\lo_export (fastpath function calls) round-trip a file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-lo-'));
    const src = join(dir, 'in.bin');
    const out = join(dir, 'out.bin');
    writeFileSync(src, Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251)));
    const env = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(proxy.port), PGUSER: app.user, PGPASSWORD: app.password, PGDATABASE: info.database, PGSSLMODE: 'disable' };
    const imp = await run('/usr/lib/postgresql/15/bin/psql', ['-X', '-At', '-c', `\\lo_import '${src}'`], { env });
    const oid = imp.stdout.match(/lo_import (\d+)/)![1]!;
    // On the primary: the export runs in its own session, which must see the object.
    await run('/usr/lib/postgresql/15/bin/psql', ['-X', '-At', '-c', `/* route=primary */ SELECT 1`, '-c', `\\lo_export ${oid} '${out}'`], { env });
    expect(readFileSync(out).equals(readFileSync(src))).toBe(true);
    await run('/usr/lib/postgresql/15/bin/psql', ['-X', '-At', '-c', `\\lo_unlink ${oid}`], { env });
  });
});
