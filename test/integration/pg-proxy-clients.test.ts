import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import postgres from 'postgres';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { nodeStatementCalls, resetStatementStats } from '../support/pg-stats.js';

/** Real clients through the proxy: psql, pgbench, node-postgres, postgres.js, psycopg2. */
const run = promisify(execFile);
const info = inject('pgCluster');
const app = info.users.app;
const PG_BIN = '/usr/lib/postgresql/15/bin';
let proxy: RunningProxy;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  proxy = await startProxy({ nodes: info.nodes, user: app, clusterYaml: '    pool:\n      size: 12\n' });
  env = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(proxy.port), PGUSER: app.user, PGPASSWORD: app.password, PGDATABASE: info.database, PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '10' };
});

afterAll(async () => {
  await proxy?.stop();
});

async function psql(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(`${PG_BIN}/psql`, ['-X', '-v', 'ON_ERROR_STOP=1', ...args], { env, timeout: 60_000 });
}

describe('psql through the proxy', () => {
  it('runs queries, \\d, \\copy both ways, a transaction and an error inside a transaction', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-psql-'));
    const csvIn = join(dir, 'in.csv');
    const csvOut = join(dir, 'out.csv');
    writeFileSync(csvIn, Array.from({ length: 1000 }, (_, i) => `${i},name ${i}`).join('\n') + '\n');
    await psql('-c', 'DROP TABLE IF EXISTS psql_t', '-c', 'CREATE TABLE psql_t (id int primary key, name text)');
    // Each psql run is a new session: its reads may go to a replica, so let replication catch up.
    const cluster = (await import('../support/pg-cluster.js')).PgCluster.attach(info);
    await cluster.waitForReplication();
    const d = await psql('-c', '\\d psql_t');
    expect(d.stdout).toMatch(/Table "public.psql_t"/);
    expect(d.stdout).toMatch(/name\s+\|\s+text/);
    await psql('-c', `\\copy psql_t FROM '${csvIn}' WITH (FORMAT csv)`);
    await cluster.waitForReplication();
    await psql('-c', `\\copy (SELECT * FROM psql_t ORDER BY id) TO '${csvOut}' WITH (FORMAT csv)`);
    expect(readFileSync(csvOut, 'utf8')).toBe(readFileSync(csvIn, 'utf8'));
    const tx = await psql('-At', '-c', 'BEGIN', '-c', "UPDATE psql_t SET name = 'changed' WHERE id = 1", '-c', 'SELECT name FROM psql_t WHERE id = 1', '-c', 'COMMIT');
    expect(tx.stdout).toContain('changed');
    // An error inside a transaction: the rest of it is refused until ROLLBACK, as in PostgreSQL.
    const script = join(dir, 'err.sql');
    writeFileSync(script, 'BEGIN;\nSELECT 1/0;\nSELECT 1;\nROLLBACK;\nSELECT 42 AS after;\n');
    const r = await run(`${PG_BIN}/psql`, ['-X', '-At', '-f', script], { env }).catch((e: { stdout: string; stderr: string }) => e);
    expect(r.stderr).toMatch(/division by zero/);
    expect(r.stderr).toMatch(/current transaction is aborted/);
    expect(r.stdout.trim().split('\n').pop()).toBe('42');
  });
});

describe('pgbench through the proxy', () => {
  it('initializes, then runs -S and TPC-B with -M simple and -M extended, 8 clients, without errors', async () => {
    await run(`${PG_BIN}/pgbench`, ['-i', '-s', '2', '-q'], { env, timeout: 120_000 });
    const { PgCluster } = await import('../support/pg-cluster.js');
    await PgCluster.attach(info).waitForReplication();
    await resetStatementStats(info);
    for (const mode of ['simple', 'extended']) {
      for (const script of [['-S'], []]) {
        const r = await run(`${PG_BIN}/pgbench`, ['-n', '-c', '8', '-j', '2', '-t', '200', '-M', mode, ...script], { env, timeout: 120_000 });
        expect(r.stdout).toMatch(/number of failed transactions: 0/);
        expect(r.stdout).toMatch(/number of transactions actually processed: 1600\/1600/);
      }
    }
    // -S reads went to the replicas; TPC-B's writes to the primary.
    const selects = await nodeStatementCalls(info, 'SELECT abalance FROM pgbench_accounts');
    const updates = await nodeStatementCalls(info, 'UPDATE pgbench_accounts');
    expect(selects.pg1! + selects.pg2!).toBeGreaterThanOrEqual(2 * 1600);
    expect(updates).toEqual({ pg0: 2 * 1600, pg1: 0, pg2: 0 });
  });
});

describe('drivers through the proxy', () => {
  it('node-postgres: parameterized queries and a transaction with rollback', async () => {
    const client = new pg.Client({ connectionString: proxy.url() });
    await client.connect();
    await client.query('CREATE TABLE IF NOT EXISTS np_t (id int primary key, v text)');
    await client.query('TRUNCATE np_t');
    await client.query('INSERT INTO np_t VALUES ($1, $2), ($3, $4)', [1, 'one', 2, 'two']);
    await client.query('BEGIN');
    await client.query('INSERT INTO np_t VALUES ($1, $2)', [3, 'three']);
    await client.query('ROLLBACK');
    const r = await client.query<{ id: number; v: string }>('/* route=primary */ SELECT id, v FROM np_t ORDER BY id');
    expect(r.rows).toEqual([
      { id: 1, v: 'one' },
      { id: 2, v: 'two' },
    ]);
    const typed = await client.query('SELECT $1::int + 1 AS n, $2::text AS s, NULL::int AS z', [41, 'héllo']);
    expect(typed.rows[0]).toEqual({ n: 42, s: 'héllo', z: null });
    await client.end();
  });

  it('postgres.js: cancels a long pg_sleep through the protocol cancel and the session goes on', async () => {
    const sql = postgres(proxy.url(), { max: 1, prepare: false });
    // Connect first: postgres.js hangs its connection when a query is cancelled before the
    // connection is up (seen against PostgreSQL directly too), which a loaded machine can hit.
    await sql`SELECT 1`;
    const started = Date.now();
    const q = sql`SELECT pg_sleep(30)`;
    setTimeout(() => q.cancel(), 300);
    await expect(q).rejects.toMatchObject({ code: '57014' });
    expect(Date.now() - started).toBeLessThan(5000);
    const [row] = await sql`SELECT 1 AS one`;
    expect(row).toEqual({ one: 1 });
    await sql.end();
  });

  it('psycopg2 (Debian python3-psycopg2): queries and a transaction', async () => {
    const code = `
import psycopg2, sys
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
cur.execute("CREATE TABLE IF NOT EXISTS py_t (id int primary key, v text)")
cur.execute("TRUNCATE py_t")
cur.executemany("INSERT INTO py_t VALUES (%s, %s)", [(i, "v%d" % i) for i in range(20)])
conn.commit()
conn.autocommit = True
cur.execute("/* route=primary */ SELECT count(*) FROM py_t")
print(cur.fetchone()[0])
conn.close()
`;
    const r = await run('/usr/bin/python3', ['-c', code, proxy.url()], { timeout: 60_000 });
    expect(r.stdout.trim()).toBe('20');
  });
});
