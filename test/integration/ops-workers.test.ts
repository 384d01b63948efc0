import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PgCluster } from '../support/pg-cluster.js';
import { freeTcpPort } from '../support/proxy.js';
import { nodeStatementCalls, resetStatementStats, superClient } from '../support/pg-stats.js';
import { renderConfig, sample, waitFor, type OpsConfig } from './ops-support.js';

/**
 * `switchyard start --workers 2` from dist/cli.js (npm run build first):
 * pgbench through the shared listener, /metrics summing both workers, and
 * SIGHUP reaching every worker.
 */
const info = inject('pgCluster');
const user = info.users.app;
const PG_BIN = '/usr/lib/postgresql/15/bin';
let dir: string;
let cfg: OpsConfig;
let configPath: string;
let proc: ChildProcess;
let out = '';

const admin = (path: string) => fetch(`http://127.0.0.1:${cfg.adminPort}${path}`);
const metricsTotal = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('switchyard_queries_total{'))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);

function pgbench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(cfg.port), PGUSER: user.user, PGPASSWORD: user.password, PGDATABASE: info.database, PGSSLMODE: 'disable' };
  return new Promise((resolve) => {
    execFile(`${PG_BIN}/pgbench`, args, { env, timeout: 120_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-workers-'));
  cfg = { adminPort: await freeTcpPort(), port: await freeTcpPort() };
  configPath = join(dir, 'switchyard.yaml');
  writeFileSync(configPath, renderConfig(info.nodes, user, cfg).replace('level: info', 'level: warn'));
  proc = spawn(process.execPath, ['dist/cli.js', 'start', '-c', configPath, '--workers', '2', '--no-watch'], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(
    'the workers to be ready',
    async () => {
      if (proc.exitCode !== null) throw new Error(`switchyard exited: ${out}`);
      return (await admin('/readyz').catch(() => null))?.status === 200;
    },
    20_000,
  );
  // pgbench tables, straight on the primary.
  const env = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(info.nodes[0]!.port), PGUSER: user.user, PGPASSWORD: user.password, PGDATABASE: info.database };
  await new Promise<void>((resolve, reject) => execFile(`${PG_BIN}/pgbench`, ['-i', '-s', '1', '-q'], { env }, (e) => (e ? reject(e) : resolve())));
  await PgCluster.attach(info).waitForReplication();
});

afterAll(async () => {
  if (proc && proc.exitCode === null) {
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await gone;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('--workers 2', () => {
  it('serves pgbench through the shared listener; /metrics sums both workers', async () => {
    const before = metricsTotal(await (await admin('/metrics')).text());
    await resetStatementStats(info);
    const r = await pgbench(['-n', '-c', '8', '-j', '2', '-t', '200', '-S']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/number of transactions actually processed: 1600\/1600/);
    expect(r.stdout).toMatch(/number of failed transactions: 0/);
    const calls = await nodeStatementCalls(info, 'SELECT abalance FROM pgbench_accounts');
    expect(calls.pg1! + calls.pg2!).toBe(1600);
    const text = await (await admin('/metrics')).text();
    // Each worker counts only the connections it accepted: the sum covers all 1600.
    expect(metricsTotal(text) - before).toBeGreaterThanOrEqual(1600);
    // A per-process value, summed: two workers answered.
    expect(sample(text, 'switchyard_max_client_connections')).toBe(20_000);
    // Topology is the same in every worker: not doubled.
    expect(sample(text, 'switchyard_primary_count', { cluster: 'main' })).toBe(1);
    expect(sample(text, 'switchyard_backend_up', { cluster: 'main', node: 'pg0', role: 'primary' })).toBe(1);
    const status = (await (await admin('/status')).json()) as { clusters: { nodes: { name: string }[] }[] };
    expect(status.clusters[0]!.nodes.map((n) => n.name)).toEqual(['pg0', 'pg1', 'pg2']);
  });

  it('SIGHUP to the primary reloads every worker', async () => {
    writeFileSync(configPath, renderConfig(info.nodes, user, { ...cfg, weights: { pg1: 0, pg2: 1 } }).replace('level: info', 'level: warn'));
    proc.kill('SIGHUP');
    await waitFor('the reload to be counted', async () => sample(await (await admin('/metrics')).text(), 'switchyard_config_reloads_total', { result: 'success' }) === 1, 10_000);
    await resetStatementStats(info);
    // Eight connections land on both workers (round robin); none may read from pg1 any more.
    const clients = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const c = new pg.Client({ host: '127.0.0.1', port: cfg.port, user: user.user, password: user.password, database: info.database });
        await c.connect();
        return c;
      }),
    );
    for (const c of clients) for (let i = 0; i < 10; i++) await c.query('SELECT abalance FROM pgbench_accounts WHERE aid = $1', [i + 1]);
    await Promise.all(clients.map((c) => c.end()));
    const calls = await nodeStatementCalls(info, 'SELECT abalance FROM pgbench_accounts');
    expect(calls).toEqual({ pg0: 0, pg1: 0, pg2: 80 });
  });

  it('one topology monitor (in the primary) feeds both workers: one monitoring connection per node', async () => {
    for (const n of info.nodes) {
      const c = await superClient(info, n.name);
      try {
        const r = await c.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'switchyard-monitor'");
        expect(Number(r.rows[0]!.n), n.name).toBe(1);
      } finally {
        await c.end();
      }
    }
  });

  it('drain reaches every worker', async () => {
    const post = (path: string) => fetch(`http://127.0.0.1:${cfg.adminPort}${path}`, { method: 'POST', headers: { authorization: 'Bearer ops-token' } });
    expect((await post('/clusters/main/nodes/pg2/drain')).status).toBe(200);
    await waitFor('pg2 drained in /status', async () => {
      const st = (await (await admin('/status')).json()) as { clusters: { nodes: { name: string; drained: boolean }[] }[] };
      return st.clusters[0]!.nodes.find((n) => n.name === 'pg2')!.drained;
    });
    await resetStatementStats(info);
    const clients = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const c = new pg.Client({ host: '127.0.0.1', port: cfg.port, user: user.user, password: user.password, database: info.database });
        await c.connect();
        return c;
      }),
    );
    // pg1 has weight 0 and pg2 is drained: reads fall back to the primary in every worker.
    for (const c of clients) for (let i = 0; i < 5; i++) await c.query('SELECT abalance FROM pgbench_accounts WHERE aid = $1', [i + 1]);
    await Promise.all(clients.map((c) => c.end()));
    expect(await nodeStatementCalls(info, 'SELECT abalance FROM pgbench_accounts')).toEqual({ pg0: 40, pg1: 0, pg2: 0 });
    expect((await post('/clusters/main/nodes/pg2/enable')).status).toBe(200);
  });

  it('a CancelRequest reaches the session whichever worker it lands on: 6 sleeping clients, each cancelled within a second', async () => {
    // node:cluster gives each new connection (the cancel's too) to the workers in turn, so with
    // 6 sessions spread over 2 workers about half of the cancels land on the other worker.
    const clients = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const c = new pg.Client({ host: '127.0.0.1', port: cfg.port, user: user.user, password: user.password, database: info.database });
        c.on('error', () => undefined);
        await c.connect();
        return c;
      }),
    );
    try {
      for (const c of clients) {
        const t0 = Date.now();
        const q = new pg.Query('SELECT pg_sleep(30)');
        const done = new Promise<Error | null>((resolve) => {
          q.on('end', () => resolve(null));
          q.on('error', (e) => resolve(e));
        });
        c.query(q);
        await new Promise((r) => setTimeout(r, 150));
        (new pg.Client({ host: '127.0.0.1', port: cfg.port }) as unknown as { cancel(c: pg.Client, q: unknown): void }).cancel(c, q);
        const err = await done;
        expect((err as Error & { code?: string })?.code).toBe('57014');
        expect(Date.now() - t0).toBeLessThan(1500);
        expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      }
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
  }, 60_000);

  it('SIGTERM stops the primary and its workers', async () => {
    const gone = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    expect(await gone).toBe(0);
    await expect(fetch(`http://127.0.0.1:${cfg.adminPort}/healthz`)).rejects.toThrow();
    const c = new pg.Client({ host: '127.0.0.1', port: cfg.port, user: user.user, password: user.password, database: info.database, connectionTimeoutMillis: 2000 });
    await expect(c.connect()).rejects.toThrow();
  });

});
