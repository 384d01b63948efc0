import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { MariaCluster } from '../support/mariadb-cluster.js';
import { PgCluster } from '../support/pg-cluster.js';
import { freeTcpPort } from '../support/proxy.js';
import { nodeStatementCalls, resetStatementStats, superClient } from '../support/pg-stats.js';
import { PROBE_USER, delta, nodeCounters, prepareProbeUser } from './mysql-proxy-support.js';
import { renderConfig, sample, startOpsProxy, waitFor, type OpsConfig } from './ops-support.js';

/**
 * `switchyard start --workers 2` from dist/cli.js (npm run build first), with a
 * PostgreSQL and a MariaDB cluster and the file watch on: pgbench and mysql2
 * through the shared listeners, /metrics summing both workers, one topology
 * monitor (the primary's) for both protocols, reloads reaching every worker
 * and counted once per change.
 */
const info = inject('pgCluster');
const maria = inject('mariaCluster');
const mariaCluster = MariaCluster.attach(maria);
const user = info.users.app;
const PG_BIN = '/usr/lib/postgresql/15/bin';
let dir: string;
let cfg: OpsConfig;
let myPort: number;
let configPath: string;
let proc: ChildProcess;
let out = '';

const admin = (path: string) => fetch(`http://127.0.0.1:${cfg.adminPort}${path}`);
const post = (path: string) => fetch(`http://127.0.0.1:${cfg.adminPort}${path}`, { method: 'POST', headers: { authorization: 'Bearer ops-token' } });

/** The ops config (PostgreSQL cluster `main`) plus a MariaDB cluster `my`; the monitor logs in as the first user (app). */
function writeConfig(weights: { pg?: Record<string, number>; my?: Record<string, number> } = {}): void {
  const nodes = maria.nodes.map((n) => `      - { name: ${n.name}, host: ${n.host}, port: ${n.port}, weight: ${weights.my?.[n.name] ?? 1} }`).join('\n');
  const my = `  - name: my
    protocol: mysql
    listen: 127.0.0.1:${myPort}
    nodes:
${nodes}
    users:
      - { name: ${maria.users.app.user}, password: "${maria.users.app.password}" }
      - { name: ${PROBE_USER.user}, password: "${PROBE_USER.password}" }
    health:
      interval: 100ms
      timeout: 1s
`;
  writeFileSync(configPath, renderConfig(info.nodes, user, { ...cfg, weights: weights.pg }).replace('level: info', 'level: warn') + my);
}

type WorkerStatus = { pid: number; client_connections: number; config: { sha256: string; generation: number } };
async function status(): Promise<{ clusters: { name: string; nodes: { name: string; drained: boolean; weight: number }[] }[]; workers: WorkerStatus[] }> {
  return (await (await admin('/status')).json()) as never;
}
const fileSha = () => createHash('sha256').update(readFileSync(configPath)).digest('hex');
const reloads = async () => sample(await (await admin('/metrics')).text(), 'switchyard_config_reloads_total', { result: 'success' });

/** Local TCP port -> pid owning the socket, for `pids` (from /proc: socket inodes in net/tcp and in each process's fds). */
function socketOwners(pids: number[]): Map<number, number> {
  const inodeOwner = new Map<string, number>();
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec((() => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ''; } })());
      if (m) inodeOwner.set(m[1]!, pid);
    }
  }
  const out = new Map<number, number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const owner = inodeOwner.get(f[9]!);
      if (owner !== undefined) out.set(parseInt(f[1]!.split(':')[1]!, 16), owner);
    }
  }
  return out;
}

/** Per MariaDB node, the client ports of the connections that say program_name=switchyard-monitor. */
async function mariaMonitorPorts(): Promise<Record<string, number[]>> {
  const outp: Record<string, number[]> = {};
  for (const n of maria.nodes) {
    const rows = await mariaCluster.query<{ host: string }>(
      n.name,
      "SELECT p.HOST AS host FROM information_schema.PROCESSLIST p JOIN performance_schema.session_connect_attrs a ON a.PROCESSLIST_ID = p.ID WHERE a.ATTR_NAME = 'program_name' AND a.ATTR_VALUE = 'switchyard-monitor'",
    );
    outp[n.name] = rows.map((r) => Number(r.host.split(':').pop()));
  }
  return outp;
}

/** `n` mysql2 connections through the proxy as the probe user (node:cluster spreads them over the workers). */
function mysqlClients(n: number): Promise<mysql.Connection[]> {
  return Promise.all(Array.from({ length: n }, () => mysql.createConnection({ host: '127.0.0.1', port: myPort, user: PROBE_USER.user, password: PROBE_USER.password, database: maria.database })));
}
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
  myPort = await freeTcpPort();
  configPath = join(dir, 'switchyard.yaml');
  await prepareProbeUser(maria);
  await mariaCluster.query('my0', 'DROP TABLE IF EXISTS app.workers_probe; CREATE TABLE app.workers_probe (id INT AUTO_INCREMENT PRIMARY KEY, v INT); INSERT INTO app.workers_probe (v) VALUES (0)');
  await mariaCluster.waitForReplication();
  writeConfig();
  // The file watch stays on: a file change then reaches the primary twice (its watch and the SIGHUP or POST /reload).
  proc = spawn(process.execPath, ['dist/cli.js', 'start', '-c', configPath, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
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

  it('SIGHUP to the primary reloads every worker; the change is counted once although the file watch saw it too', async () => {
    writeConfig({ pg: { pg1: 0, pg2: 1 } });
    proc.kill('SIGHUP');
    await waitFor('the reload to be counted', async () => (await reloads()) === 1, 10_000);
    // The watch's event (100 ms debounce) or its 2 s re-hash also asks for a reload of the same
    // content: it changes nothing and counts nothing, in any worker.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await reloads()).toBe(1);
    const st = await status();
    expect(st.workers.map((w) => w.config)).toEqual([
      { sha256: fileSha(), generation: 1, loaded_at: expect.any(String) },
      { sha256: fileSha(), generation: 1, loaded_at: expect.any(String) },
    ]);
    // POST /reload of the unchanged file: 200, nothing applied, nothing counted.
    expect((await post('/reload')).status).toBe(200);
    expect(await reloads()).toBe(1);
    expect((await status()).workers.map((w) => w.config.generation)).toEqual([1, 1]);
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

  it('one topology monitor (in the primary) feeds both workers: one monitoring connection per node, owned by the primary', async () => {
    const pids = [proc.pid!, ...(await status()).workers.map((w) => w.pid)];
    expect(new Set(pids).size).toBe(3);
    const owners = socketOwners(pids);
    for (const n of info.nodes) {
      const c = await superClient(info, n.name);
      try {
        const r = await c.query<{ port: number }>("SELECT client_port AS port FROM pg_stat_activity WHERE application_name = 'switchyard-monitor'");
        expect(r.rows.length, n.name).toBe(1);
        expect(owners.get(r.rows[0]!.port), `${n.name}: pid owning the monitor's socket`).toBe(proc.pid);
      } finally {
        await c.end();
      }
    }
  });

  it('the MariaDB cluster too: one monitoring connection per node, from the primary process, not one per worker', async () => {
    const pids = [proc.pid!, ...(await status()).workers.map((w) => w.pid)];
    const expected = { my0: ['primary'], my1: ['primary'], my2: ['primary'] };
    // A few looks 100 ms apart: a monitor connection that is being replaced just then shows
    // twice or not at all in one look (a worker's own monitor would show in every look).
    let seen: Record<string, string[]> = {};
    for (let look = 0; look < 20; look++) {
      const ports = await mariaMonitorPorts();
      const owners = socketOwners(pids);
      seen = Object.fromEntries(Object.entries(ports).map(([node, list]) => [node, list.map((port) => (owners.get(port) === proc.pid ? 'primary' : pids.includes(owners.get(port)!) ? 'worker' : 'other'))]));
      if (JSON.stringify(seen) === JSON.stringify(expected)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toEqual(expected);
    // The workers route on the primary's snapshots: the same roles as its monitor sees.
    const my = (await status()).clusters.find((c) => c.name === 'my')!;
    expect(my.nodes.map((n) => n.name)).toEqual(['my0', 'my1', 'my2']);
  });

  it('mysql2 clients on both workers: reads on the replicas, writes on the primary (counted at the MariaDB nodes)', async () => {
    const before = await nodeCounters(maria);
    const clients = await mysqlClients(8);
    try {
      // Both workers hold some of the 8 (node:cluster hands connections out in turn).
      const perWorker = (await status()).workers.map((w) => w.client_connections);
      expect(perWorker.reduce((a, b) => a + b, 0)).toBe(8);
      expect(Math.min(...perWorker), JSON.stringify(perWorker)).toBeGreaterThan(0);
      for (const c of clients) for (let i = 0; i < 10; i++) await c.query('SELECT v FROM workers_probe WHERE id = 1');
      for (const c of clients) await c.query('INSERT INTO workers_probe (v) VALUES (1)');
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
    const after = await nodeCounters(maria);
    const selects = delta(before, after, 'userSelects');
    expect(selects.my0).toBe(0);
    expect(selects.my1! + selects.my2!).toBe(80);
    expect(Math.min(selects.my1!, selects.my2!), JSON.stringify(selects)).toBeGreaterThan(0);
    expect(delta(before, after, 'userUpdates')).toEqual({ my0: 8, my1: 0, my2: 0 });
    expect(delta(before, after, 'comInsert').my0).toBe(8);
  });

  it('drain reaches every worker', async () => {
    expect((await post('/clusters/main/nodes/pg2/drain')).status).toBe(200);
    await waitFor('pg2 drained in /status', async () => (await status()).clusters[0]!.nodes.find((n) => n.name === 'pg2')!.drained);
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

  it('POST /reload reaches every worker: each reports the file it now runs, and new connections on both workers follow the new weights', async () => {
    writeConfig({ pg: { pg1: 1, pg2: 0 }, my: { my1: 0, my2: 1 } });
    expect((await post('/reload')).status).toBe(200);
    // 200 means every worker applied it: each reports the file's sha256 and its second reload.
    const st = await status();
    expect(st.workers.map((w) => ({ sha256: w.config.sha256, generation: w.config.generation }))).toEqual([
      { sha256: fileSha(), generation: 2 },
      { sha256: fileSha(), generation: 2 },
    ]);
    expect(st.clusters.find((c) => c.name === 'main')!.nodes.find((n) => n.name === 'pg2')!.weight).toBe(0);
    await resetStatementStats(info);
    const myBefore = await nodeCounters(maria);
    const pgClients = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const c = new pg.Client({ host: '127.0.0.1', port: cfg.port, user: user.user, password: user.password, database: info.database });
        await c.connect();
        return c;
      }),
    );
    const myClients = await mysqlClients(8);
    try {
      const perWorker = (await status()).workers.map((w) => w.client_connections);
      expect(Math.min(...perWorker), JSON.stringify(perWorker)).toBeGreaterThan(0);
      for (const c of pgClients) for (let i = 0; i < 10; i++) await c.query('SELECT abalance FROM pgbench_accounts WHERE aid = $1', [i + 1]);
      for (const c of myClients) for (let i = 0; i < 10; i++) await c.query('SELECT v FROM workers_probe WHERE id = 1');
    } finally {
      await Promise.all([...pgClients.map((c) => c.end()), ...myClients.map((c) => c.end())]);
    }
    expect(await nodeStatementCalls(info, 'SELECT abalance FROM pgbench_accounts')).toEqual({ pg0: 0, pg1: 80, pg2: 0 });
    expect(delta(myBefore, await nodeCounters(maria), 'userSelects')).toEqual({ my0: 0, my1: 0, my2: 80 });
    // The watch saw the change too: still one count per change (max over the workers, each counting 2).
    await new Promise((r) => setTimeout(r, 2500));
    expect(await reloads()).toBe(2);
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

describe('one process (no --workers): one change is one reload', () => {
  it('a change seen by the watch and by SIGHUP counts once; the same invalid file asked twice is one failure; unchanged content counts nothing', async () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const p = await startOpsProxy(info.nodes, user, {}, { watch: true });
    try {
      const base = { adminPort: p.adminPort, port: p.port };
      const count = async (result: string) => sample(await (await p.admin('/metrics')).text(), 'switchyard_config_reloads_total', { result });
      // 1. A change: SIGHUP's handler (app.reload) and the watch both see it.
      writeFileSync(p.configPath, renderConfig(info.nodes, user, { ...base, weights: { pg1: 2 } }));
      expect((await p.app.reload()).ok).toBe(true);
      await sleep(2500); // past the watch's 2 s re-hash
      expect(await count('success')).toBe(1);
      expect(p.app.status().config.generation).toBe(1);
      // 2. An invalid file, seen by both, then asked for once more: one failure, the same problems each time.
      writeFileSync(p.configPath, renderConfig(info.nodes, user, { ...base, rawWeight: '-1' }));
      const first = await p.app.reload();
      await sleep(2500);
      const again = await p.app.reload();
      expect(first.ok).toBe(false);
      expect(again).toEqual(first);
      expect(await count('failure')).toBe(1);
      // 3. Back to the running content: nothing to apply, nothing counted; the same invalid file after it is a new change.
      writeFileSync(p.configPath, renderConfig(info.nodes, user, { ...base, weights: { pg1: 2 } }));
      expect(await p.app.reload()).toEqual({ ok: true, problems: [] });
      writeFileSync(p.configPath, renderConfig(info.nodes, user, { ...base, rawWeight: '-1' }));
      expect((await p.app.reload()).ok).toBe(false);
      expect(await count('failure')).toBe(2);
      expect(await count('success')).toBe(1);
      expect(p.app.status().config.generation).toBe(1);
    } finally {
      await p.stop();
    }
  }, 30_000);
});
