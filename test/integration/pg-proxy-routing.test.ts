import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { appClient, nodeStatementCalls, resetStatementStats } from '../support/pg-stats.js';

/**
 * Routing through the proxy, checked at the backends: pg_stat_statements on
 * each node counts what actually ran there.
 */
const info = inject('pgCluster');
const app = info.users.app;
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startProxy({ nodes: info.nodes, user: app, weights: { pg0: 1, pg1: 2, pg2: 1 } });
  const c = await appClient(info, 'pg0', info.database);
  await c.query('DROP TABLE IF EXISTS routing_probe; CREATE TABLE routing_probe (id serial primary key, v text)');
  await c.query("INSERT INTO routing_probe (v) SELECT 'x' || g FROM generate_series(1, 10) g");
  await c.end();
  await waitForReplicas();
});

afterAll(async () => {
  await proxy?.stop();
});

async function waitForReplicas(): Promise<void> {
  const { PgCluster } = await import('../support/pg-cluster.js');
  await PgCluster.attach(info).waitForReplication();
}

describe('PostgreSQL routing, checked at the backends', () => {
  it('sends every write to the primary', async () => {
    await resetStatementStats(info);
    const client = new pg.Client({ connectionString: proxy.url() });
    await client.connect();
    for (let i = 0; i < 50; i++) await client.query('INSERT INTO routing_probe (v) VALUES ($1)', [`w${i}`]);
    await client.query("UPDATE routing_probe SET v = v || '!' WHERE id = 1");
    await client.end();
    const inserts = await nodeStatementCalls(info, 'INSERT INTO routing_probe');
    const updates = await nodeStatementCalls(info, 'UPDATE routing_probe');
    expect(inserts).toEqual({ pg0: 50, pg1: 0, pg2: 0 });
    expect(updates).toEqual({ pg0: 1, pg1: 0, pg2: 0 });
  });

  it('splits 10,000 autocommit reads 2:1 over the replicas (weights 2 and 1), none on the primary', async () => {
    await resetStatementStats(info);
    const client = new pg.Client({ connectionString: proxy.url() });
    await client.connect();
    for (let i = 0; i < 10_000; i++) await client.query('SELECT count(*) FROM routing_probe WHERE id > 0');
    await client.end();
    const calls = await nodeStatementCalls(info, 'SELECT count(*) FROM routing_probe WHERE id >');
    expect(calls.pg0).toBe(0);
    expect(calls.pg1! + calls.pg2!).toBe(10_000);
    const ratio = calls.pg1! / calls.pg2!;
    expect(ratio).toBeGreaterThan(2 * 0.95);
    expect(ratio).toBeLessThan(2 * 1.05);
  });

  it("runs all of a transaction's statements on one node (the primary)", async () => {
    await resetStatementStats(info);
    const client = new pg.Client({ connectionString: proxy.url() });
    await client.connect();
    await client.query('BEGIN');
    await client.query('SELECT v FROM routing_probe WHERE id = 2');
    await client.query("INSERT INTO routing_probe (v) VALUES ('tx')");
    await client.query('SELECT v FROM routing_probe WHERE id = 3');
    await client.query('COMMIT');
    await client.end();
    const reads = await nodeStatementCalls(info, 'SELECT v FROM routing_probe WHERE id =');
    expect(reads).toEqual({ pg0: 2, pg1: 0, pg2: 0 });
  });

  it('runs a READ ONLY transaction on one replica', async () => {
    await resetStatementStats(info);
    const client = new pg.Client({ connectionString: proxy.url() });
    await client.connect();
    await client.query('BEGIN READ ONLY');
    for (let i = 0; i < 5; i++) await client.query('SELECT v FROM routing_probe WHERE id = $1', [i]);
    await client.query('COMMIT');
    await client.end();
    const reads = await nodeStatementCalls(info, 'SELECT v FROM routing_probe WHERE id =');
    expect(reads.pg0).toBe(0);
    expect([reads.pg1, reads.pg2].sort()).toEqual([0, 5]);
  });

  it('honours /* route=primary */ for a read and never sends a write to a replica on a route=replica hint', async () => {
    await resetStatementStats(info);
    const client = new pg.Client({ connectionString: proxy.url() });
    await client.connect();
    await client.query('/* route=primary */ SELECT v FROM routing_probe WHERE id = 4');
    await client.query("/* route=replica */ INSERT INTO routing_probe (v) VALUES ('hinted')");
    await client.end();
    expect(await nodeStatementCalls(info, 'SELECT v FROM routing_probe WHERE id =')).toEqual({ pg0: 1, pg1: 0, pg2: 0 });
    expect(await nodeStatementCalls(info, 'INSERT INTO routing_probe')).toEqual({ pg0: 1, pg1: 0, pg2: 0 });
  });

  it('counts queries per node and route in /metrics', async () => {
    const res = await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/switchyard_queries_total\{cluster="main",node="pg0",route="primary"\} \d+/);
    expect(text).toMatch(/switchyard_queries_total\{cluster="main",node="pg1",route="replica"\} \d+/);
    const status = (await (await fetch(`http://127.0.0.1:${proxy.adminPort}/status`)).json()) as { clusters: { nodes: { name: string; role: string }[] }[] };
    expect(status.clusters[0]!.nodes.map((n) => [n.name, n.role])).toEqual([
      ['pg0', 'primary'],
      ['pg1', 'replica'],
      ['pg2', 'replica'],
    ]);
  });
});
