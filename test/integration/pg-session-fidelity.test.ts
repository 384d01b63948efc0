import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import postgres from 'postgres';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { PgCluster } from '../support/pg-cluster.js';
import { nodeStatementCalls, resetStatementStats, superClient } from '../support/pg-stats.js';

/**
 * Session fidelity under transaction pooling with read/write splitting:
 * named prepared statements, pipelines and session settings follow the client
 * from node to node; what cannot follow pins; dead replica connections are
 * retried for autocommit reads. Routing is checked at the backends.
 */
const run = promisify(execFile);
const info = inject('pgCluster');
const app = info.users.app;
const PG_BIN = '/usr/lib/postgresql/15/bin';
const ports = Object.fromEntries(info.nodes.map((n) => [n.port, n.name]));
let proxy: RunningProxy;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  // eventual: reads right after a write may go to a replica, so alternation really crosses nodes.
  proxy = await startProxy({ nodes: info.nodes, user: app, clusterYaml: '    pool:\n      size: 12\n    routing:\n      consistency: eventual\n' });
  env = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(proxy.port), PGUSER: app.user, PGPASSWORD: app.password, PGDATABASE: info.database, PGSSLMODE: 'disable' };
  const c = new pg.Client({ connectionString: proxy.url(info.database) });
  await c.connect();
  await c.query('DROP TABLE IF EXISTS fid_t; CREATE TABLE fid_t (id serial primary key, v int not null)');
  await c.query('DROP SCHEMA IF EXISTS fid_s CASCADE; CREATE SCHEMA fid_s; CREATE TABLE fid_s.only_here (x int); INSERT INTO fid_s.only_here VALUES (7)');
  await c.end();
  await PgCluster.attach(info).waitForReplication();
});

afterAll(async () => {
  await proxy?.stop();
});

function client(): pg.Client {
  return new pg.Client({ connectionString: proxy.url(info.database) });
}

describe('named prepared statements across nodes', () => {
  it('pgbench -M prepared: -S and TPC-B with 8 clients, no errors, reads on the replicas', async () => {
    await run(`${PG_BIN}/pgbench`, ['-i', '-s', '1', '-q'], { env, timeout: 120_000 });
    await PgCluster.attach(info).waitForReplication();
    await resetStatementStats(info);
    for (const script of [['-S'], []]) {
      const r = await run(`${PG_BIN}/pgbench`, ['-n', '-c', '8', '-j', '2', '-t', '200', '-M', 'prepared', ...script], { env, timeout: 120_000 });
      expect(r.stdout).toMatch(/number of failed transactions: 0/);
      expect(r.stdout).toMatch(/number of transactions actually processed: 1600\/1600/);
    }
    const selects = await nodeStatementCalls(info, 'SELECT abalance FROM pgbench_accounts');
    const updates = await nodeStatementCalls(info, 'UPDATE pgbench_accounts');
    // -S: 1600 reads, all on replicas; TPC-B's SELECT runs inside its transaction on the primary.
    expect(selects.pg1! + selects.pg2!).toBe(1600);
    expect(selects.pg1!).toBeGreaterThan(0);
    expect(selects.pg2!).toBeGreaterThan(0);
    expect(updates).toEqual({ pg0: 1600, pg1: 0, pg2: 0 });
  });

  it('node-postgres: named statements reused 1,000 times alternating reads and writes', async () => {
    await resetStatementStats(info);
    const c = client();
    await c.connect();
    let inserted = 0;
    let readOk = 0;
    for (let i = 0; i < 1000; i++) {
      if (i % 2 === 0) {
        const r = await c.query({ name: 'fid_ins', text: 'INSERT INTO fid_t (v) VALUES ($1) RETURNING id', values: [i] });
        if (r.rows[0].id > 0) inserted++;
      } else {
        const r = await c.query({ name: 'fid_sel', text: 'SELECT count(*)::int AS n FROM fid_t WHERE v >= $1', values: [0] });
        if (typeof r.rows[0].n === 'number') readOk++;
      }
    }
    await c.end();
    expect(inserted).toBe(500);
    expect(readOk).toBe(500);
    const ins = await nodeStatementCalls(info, 'INSERT INTO fid_t');
    const sel = await nodeStatementCalls(info, 'SELECT count(*)::int AS n FROM fid_t');
    expect(ins).toEqual({ pg0: 500, pg1: 0, pg2: 0 });
    expect(sel.pg0).toBe(0);
    expect(sel.pg1! + sel.pg2!).toBe(500);
    expect(Math.min(sel.pg1!, sel.pg2!)).toBeGreaterThan(100);
  });

  it('pgjdbc with prepareThreshold=1: interleaved prepared reads and writes, a batch insert, a transaction', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-jdbc-'));
    const file = join(dir, 'JdbcCheck.java');
    writeFileSync(
      file,
      `import java.sql.*;
public class JdbcCheck {
  public static void main(String[] a) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:${proxy.port}/${info.database}?prepareThreshold=1&sslmode=disable";
    try (Connection c = DriverManager.getConnection(url, "${app.user}", "${app.password}")) {
      PreparedStatement ins = c.prepareStatement("INSERT INTO fid_t (v) VALUES (?)");
      PreparedStatement sel = c.prepareStatement("SELECT count(*) FROM fid_t WHERE v = ?");
      int reads = 0;
      for (int i = 0; i < 200; i++) {
        ins.setInt(1, 100000 + i); ins.executeUpdate();
        sel.setInt(1, -1); try (ResultSet r = sel.executeQuery()) { r.next(); if (r.getInt(1) == 0) reads++; }
      }
      for (int i = 0; i < 50; i++) { ins.setInt(1, 200000 + i); ins.addBatch(); }
      int[] counts = ins.executeBatch();
      c.setAutoCommit(false);
      ins.setInt(1, 300000); ins.executeUpdate();
      PreparedStatement own = c.prepareStatement("SELECT count(*) FROM fid_t WHERE v = ?");
      own.setInt(1, 300000);
      int seen; try (ResultSet r = own.executeQuery()) { r.next(); seen = r.getInt(1); }
      c.commit();
      System.out.println("reads=" + reads + " batch=" + counts.length + " txseen=" + seen);
    }
  }
}
`,
    );
    const r = await run('java', ['-cp', '/usr/share/java/postgresql.jar', file], { timeout: 120_000 });
    expect(r.stdout.trim()).toBe('reads=200 batch=50 txseen=1');
    const direct = await superClient(info, 'pg0', info.database);
    const n = await direct.query('SELECT count(*)::int AS n FROM fid_t WHERE v >= 100000');
    await direct.end();
    expect(n.rows[0].n).toBe(200 + 50 + 1);
  });
});

describe('pipelining', () => {
  it('postgres.js: 500 pipelined prepared queries answer in order; sql.begin runs on one node', async () => {
    const sql = postgres(proxy.url(info.database), { max: 1, prepare: true, onnotice: () => undefined });
    try {
      const results = await Promise.all(Array.from({ length: 500 }, (_, i) => sql`SELECT ${i}::int AS i, inet_server_port() AS port`));
      results.forEach((r, i) => expect(r[0]!.i).toBe(i));
      const nodes = new Set(results.map((r) => ports[r[0]!.port as number]));
      expect(nodes.has('pg1') && nodes.has('pg2')).toBe(true);
      expect(nodes.has('pg0')).toBe(false);
      const tx = await sql.begin(async (t) => {
        const [w] = await t`INSERT INTO fid_t (v) VALUES (-5) RETURNING id, inet_server_port() AS port`;
        const [r] = await t`SELECT count(*)::int AS n, inet_server_port() AS port FROM fid_t WHERE id = ${w!.id}`;
        return { w: w!.port, r: r!.port, n: r!.n };
      });
      expect(tx).toEqual({ w: info.nodes[0]!.port, r: info.nodes[0]!.port, n: 1 });
    } finally {
      await sql.end();
    }
  });

  it('an error in one pipelined batch affects only that batch', async () => {
    const sql = postgres(proxy.url(info.database), { max: 1, onnotice: () => undefined });
    try {
      const settled = await Promise.allSettled([sql`SELECT 1 AS a`, sql`SELECT * FROM no_such_table_fid`, sql`SELECT 3 AS c`]);
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((settled[2] as unknown as PromiseFulfilledResult<{ c: number }[]>).value[0]!.c).toBe(3);
    } finally {
      await sql.end();
    }
  });
});

describe('session state', () => {
  it('SET search_path and statement_timeout hold while statements alternate between nodes', async () => {
    const c = client();
    await c.connect();
    await c.query('SET search_path TO fid_s, public');
    await c.query("SET statement_timeout = '4321ms'");
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      if (i % 4 === 0) await c.query('INSERT INTO fid_t (v) VALUES ($1)', [-10]); // public.fid_t, on the primary
      const r = await c.query("SELECT x, current_setting('statement_timeout') AS t, inet_server_port() AS port FROM only_here");
      expect(r.rows[0]).toMatchObject({ x: 7, t: '4321ms' });
      seen.add(ports[r.rows[0].port]!);
    }
    expect(seen.has('pg1') && seen.has('pg2')).toBe(true);
    // RESET takes effect everywhere too.
    await c.query('RESET statement_timeout');
    for (let i = 0; i < 6; i++) {
      const r = await c.query("SELECT current_setting('statement_timeout') AS t");
      expect(r.rows[0].t).toBe('0');
    }
    await c.end();
    // Another client on the same pooled connections does not inherit them.
    const other = client();
    await other.connect();
    for (let i = 0; i < 6; i++) {
      const r = await other.query("SELECT current_setting('statement_timeout') AS t, current_setting('search_path') AS p");
      expect(r.rows[0]).toEqual({ t: '0', p: '"$user", public' });
    }
    await other.end();
  });

  it('startup parameters (options=-c, application_name) hold on every node', async () => {
    const c = new pg.Client({ connectionString: proxy.url(info.database), options: '-c statement_timeout=1717', application_name: 'fid-app' });
    await c.connect();
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const r = await c.query("SELECT current_setting('statement_timeout') AS t, current_setting('application_name') AS a, inet_server_port() AS port");
      expect(r.rows[0]).toMatchObject({ t: '1717ms', a: 'fid-app' });
      seen.add(ports[r.rows[0].port]!);
    }
    expect(seen.size).toBe(2);
    await c.end();
  });

  it('a failed SET is not replayed', async () => {
    const c = client();
    await c.connect();
    await expect(c.query("SET statement_timeout = 'not a duration'")).rejects.toThrow(/invalid value/);
    for (let i = 0; i < 4; i++) expect((await c.query("SELECT current_setting('statement_timeout') AS t")).rows[0].t).toBe('0');
    await c.end();
  });

  it('a temporary table pins the session to one primary connection, and works', async () => {
    const before = proxy.app.status().clusters[0]!.pinned_sessions;
    const c = client();
    await c.connect();
    await c.query('CREATE TEMP TABLE fid_tmp (x int)');
    await c.query('INSERT INTO fid_tmp VALUES (1), (2), (3)');
    const portsSeen = new Set<number>();
    for (let i = 0; i < 10; i++) {
      const r = await c.query('SELECT sum(x)::int AS s, inet_server_port() AS port, pg_backend_pid() AS pid FROM fid_tmp');
      expect(r.rows[0].s).toBe(6);
      portsSeen.add(r.rows[0].port);
    }
    expect([...portsSeen]).toEqual([info.nodes[0]!.port]);
    expect(proxy.app.status().clusters[0]!.pinned_sessions).toBe((before ?? 0) + 1);
    await c.end();
  });

  it('LISTEN/NOTIFY: the listener is pinned and receives notifications sent by another session', async () => {
    const listener = client();
    await listener.connect();
    const got = new Promise<string>((resolve) => listener.on('notification', (n) => resolve(n.payload ?? '')));
    await listener.query('LISTEN fid_chan');
    const sender = client();
    await sender.connect();
    await sender.query("NOTIFY fid_chan, 'hello through switchyard'");
    await sender.end();
    await expect(Promise.race([got, new Promise((_, rej) => setTimeout(() => rej(new Error('no notification')), 5000))])).resolves.toBe('hello through switchyard');
    await listener.end();
  });
});

describe('read retry', () => {
  it('autocommit reads survive pg_terminate_backend of replica connections: 0 client errors', async () => {
    const retriesBefore = proxy.app.status().clusters[0]!.read_retries ?? 0;
    // One replica's connections are killed over and over; a retry goes to the other one.
    const killers = [await superClient(info, 'pg1', 'postgres')];
    let killed = 0;
    let stop = false;
    const killLoop = (async () => {
      for (let round = 0; round < 400 && !stop; round++) {
        for (const k of killers) {
          const r = await k.query(
            "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name <> 'switchyard-monitor'",
            [app.user],
          );
          killed += r.rows[0].n;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const errors: string[] = [];
    let ok = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const c = client();
        c.on('error', (e) => errors.push(`client: ${e.message}`));
        await c.connect();
        for (let i = 0; i < 150; i++) {
          try {
            const r = await c.query('SELECT count(*)::int AS n FROM fid_s.only_here');
            if (r.rows[0].n === 1) ok++;
          } catch (e) {
            errors.push((e as Error).message);
          }
        }
        await c.end();
      }),
    );
    stop = true;
    await killLoop;
    await Promise.all(killers.map((k) => k.end()));
    const retries = (proxy.app.status().clusters[0]!.read_retries ?? 0) - retriesBefore;
    console.log(`[read retry] ${ok} reads, ${killed} replica backends killed, ${retries} reads retried, ${errors.length} client errors`);
    expect(errors).toEqual([]);
    expect(ok).toBe(8 * 150);
    expect(killed).toBeGreaterThan(10);
    expect((proxy.app.status().clusters[0]!.read_retries ?? 0) - retriesBefore).toBeGreaterThan(0);
  });
});

describe('pool.mode: session', () => {
  it('a client keeps one primary and one replica connection, with its settings on both', async () => {
    const sp = await startProxy({ nodes: info.nodes, user: app, clusterYaml: '    pool:\n      mode: session\n      size: 4\n    routing:\n      consistency: eventual\n' });
    try {
      const a = new pg.Client({ connectionString: sp.url(info.database) });
      const b = new pg.Client({ connectionString: sp.url(info.database) });
      await a.connect();
      await b.connect();
      await a.query("SET statement_timeout = '2345ms'");
      const reads = new Set<string>();
      const writes = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const w = await a.query("INSERT INTO fid_t (v) VALUES (-20) RETURNING inet_server_port() AS port, pg_backend_pid() AS pid, current_setting('statement_timeout') AS t");
        writes.add(`${w.rows[0].port}/${w.rows[0].pid}/${w.rows[0].t}`);
        const r = await a.query("SELECT inet_server_port() AS port, pg_backend_pid() AS pid, current_setting('statement_timeout') AS t");
        reads.add(`${r.rows[0].port}/${r.rows[0].pid}/${r.rows[0].t}`);
      }
      expect(writes.size).toBe(1);
      expect(reads.size).toBe(1);
      const [wPort, , wT] = [...writes][0]!.split('/');
      const [rPort, , rT] = [...reads][0]!.split('/');
      expect(Number(wPort)).toBe(info.nodes[0]!.port);
      expect(Number(rPort)).not.toBe(info.nodes[0]!.port);
      expect([wT, rT]).toEqual(['2345ms', '2345ms']);
      // Another client has its own connections and none of a's settings.
      const other = await b.query("SELECT pg_backend_pid() AS pid, current_setting('statement_timeout') AS t");
      expect(other.rows[0].t).toBe('0');
      expect(`${rPort}/${other.rows[0].pid}`).not.toBe([...reads][0]!.split('/').slice(0, 2).join('/'));
      await a.end();
      await b.end();
    } finally {
      await sp.stop();
    }
  });
});
