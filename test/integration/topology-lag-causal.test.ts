import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { PgCluster } from '../support/pg-cluster.js';
import { appClient, nodeStatementCalls, resetStatementStats } from '../support/pg-stats.js';
import type { TopologySnapshot } from '../../src/routing/topology.js';

/**
 * Lag budget and read-your-writes on the shared cluster, checked at the
 * backends. Only replay is paused (and always resumed), so the cluster is
 * left as it was found.
 */
const info = inject('pgCluster');
const app = info.users.app;
const cluster = PgCluster.attach(info);
const replicas = info.nodes.filter((n) => n.role === 'replica').map((n) => n.name);
const primary = info.nodes.find((n) => n.role === 'primary')!.name;
const paused = replicas[0]!;
const other = replicas[1]!;

beforeAll(async () => {
  const c = await appClient(info, primary, info.database);
  await c.query('DROP TABLE IF EXISTS ryw_probe; CREATE TABLE ryw_probe (id bigint primary key, v int)');
  await c.query('DROP TABLE IF EXISTS lag_probe; CREATE TABLE lag_probe (id serial primary key, v int)');
  await c.end();
  await cluster.waitForReplication();
});

afterAll(async () => {
  for (const r of replicas) await cluster.resumeReplay(r).catch(() => undefined);
});

function snapshotOf(proxy: RunningProxy): TopologySnapshot {
  return (proxy.app as unknown as { clusters: Map<string, { runtime: { snapshot(): TopologySnapshot } }> }).clusters.get('main')!.runtime.snapshot();
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - t0;
}

/** insert-then-select-by-id through the proxy; a miss is a select that does not see its own insert. */
async function readYourWrites(proxy: RunningProxy, iterations: number, base: number): Promise<{ misses: number; ms: number }> {
  const c = new pg.Client({ connectionString: proxy.url(info.database) });
  await c.connect();
  let misses = 0;
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) {
    const id = base + i;
    await c.query('INSERT INTO ryw_probe (id, v) VALUES ($1, 1)', [id]);
    const r = await c.query('SELECT v FROM ryw_probe WHERE id = $1', [id]);
    if (r.rowCount !== 1) misses++;
  }
  const ms = performance.now() - t0;
  await c.end();
  return { misses, ms };
}

describe('read-your-writes (one replica paused, lag budget wide open)', () => {
  // The paused replica stays eligible, so only causal consistency keeps the session off it.
  const wide = '    routing:\n      max_replica_lag: { bytes: 1GB, time: 1h }\n';

  it('causal: 10,000 insert-then-select iterations, 0 misses', async () => {
    const proxy = await startProxy({ nodes: info.nodes, user: app, clusterYaml: `${wide}      consistency: causal\n` });
    try {
      await cluster.pauseReplay(paused);
      await resetStatementStats(info);
      const { misses, ms } = await readYourWrites(proxy, 10_000, 1_000_000);
      const calls = await nodeStatementCalls(info, 'SELECT v FROM ryw_probe WHERE id');
      console.log(`causal: 10000 iterations in ${ms.toFixed(0)}ms (${((ms / 10_000) * 1000).toFixed(0)}us each), misses=${misses}; reads per node ${JSON.stringify(calls)}`);
      expect(misses).toBe(0);
      // At the backends: the paused replica never had the row, and never got the read.
      expect(calls[paused]).toBe(0);
      expect(calls[primary]! + calls[other]!).toBe(10_000);
    } finally {
      await cluster.resumeReplay(paused);
      await proxy.stop();
    }
  }, 120_000);

  it('eventual: the same test misses (so the causal one can fail)', async () => {
    const proxy = await startProxy({ nodes: info.nodes, user: app, clusterYaml: `${wide}      consistency: eventual\n` });
    try {
      await cluster.pauseReplay(paused);
      const { misses, ms } = await readYourWrites(proxy, 2_000, 2_000_000);
      console.log(`eventual: 2000 iterations in ${ms.toFixed(0)}ms (${((ms / 2_000) * 1000).toFixed(0)}us each), misses=${misses}`);
      expect(misses).toBeGreaterThan(0);
    } finally {
      await cluster.resumeReplay(paused);
      await proxy.stop();
    }
  }, 120_000);

  it('causal: reads return to replicas once they have replayed the write', async () => {
    const proxy = await startProxy({ nodes: info.nodes, user: app, clusterYaml: `${wide}      consistency: causal\n` });
    try {
      const c = new pg.Client({ connectionString: proxy.url(info.database) });
      await c.connect();
      await c.query('INSERT INTO ryw_probe (id, v) VALUES (3000000, 1)');
      await new Promise((r) => setTimeout(r, 500)); // a few monitor rounds: the replicas have replayed it
      await resetStatementStats(info);
      for (let i = 0; i < 50; i++) await c.query('SELECT v FROM ryw_probe WHERE id = 3000000');
      await c.end();
      const calls = await nodeStatementCalls(info, 'SELECT v FROM ryw_probe WHERE id');
      expect(calls[primary]).toBe(0);
      expect(calls[paused]! + calls[other]!).toBe(50);
    } finally {
      await proxy.stop();
    }
  }, 60_000);
});

describe('read-your-writes picks the replica that has the write', () => {
  it('causal, one replica paused: after the write replays on the other, reads go there, never to the paused one', async () => {
    const proxy = await startProxy({ nodes: info.nodes, user: app, clusterYaml: '    routing:\n      max_replica_lag: { bytes: 1GB, time: 1h }\n      consistency: causal\n' });
    try {
      await cluster.pauseReplay(paused);
      const c = new pg.Client({ connectionString: proxy.url(info.database) });
      await c.connect();
      await c.query('INSERT INTO ryw_probe (id, v) VALUES (3000001, 1)');
      await new Promise((r) => setTimeout(r, 500)); // a few monitor rounds: the unpaused replica has replayed it
      await resetStatementStats(info);
      let misses = 0;
      for (let i = 0; i < 50; i++) if ((await c.query('SELECT v FROM ryw_probe WHERE id = 3000001')).rowCount !== 1) misses++;
      await c.end();
      const calls = await nodeStatementCalls(info, 'SELECT v FROM ryw_probe WHERE id');
      expect(misses).toBe(0);
      expect(calls).toMatchObject({ [primary]: 0, [paused]: 0, [other]: 50 });
    } finally {
      await cluster.resumeReplay(paused);
      await proxy.stop();
    }
  }, 60_000);
});

describe('lag budget (max_replica_lag)', () => {
  it('a replica whose replay stops gets no reads within two intervals of crossing the budget, and reads again after resume', async () => {
    const interval = 100;
    const budgetMs = 500;
    const proxy = await startProxy({ nodes: info.nodes, user: app, clusterYaml: `    routing:\n      max_replica_lag: { bytes: 16MB, time: ${budgetMs}ms }\n` });
    const writer = await appClient(info, primary, info.database);
    let writing = true;
    const load = (async () => {
      while (writing) {
        await writer.query('INSERT INTO lag_probe (v) VALUES (1)');
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const reader = new pg.Client({ connectionString: proxy.url(info.database) });
    await reader.connect();
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(snapshotOf(proxy).nodes.find((n) => n.name === paused)!.lagSeconds).toBeLessThan(budgetMs / 1000);
      await cluster.pauseReplay(paused);
      const pausedAt = Date.now();
      // 1. The budget is crossed about budgetMs after the pause; the replica must be out by two intervals later.
      const outAfter = await until(() => {
        const n = snapshotOf(proxy).nodes.find((x) => x.name === paused)!;
        return n.lagSeconds !== null && n.lagSeconds * 1000 > budgetMs;
      }, 10_000);
      console.log(`lag: replica marked over budget ${outAfter}ms after replay paused (budget ${budgetMs}ms, interval ${interval}ms)`);
      // Two intervals, plus 150 ms for the probe round itself: the round that sees the crossing
      // queries three servers, and this process (proxy and test) shares 2 cores with them and
      // the other test files (762 ms against a 750 ms bound was seen once under that load).
      expect(outAfter).toBeLessThanOrEqual(budgetMs + 2 * interval + 150);
      // 2. From then on, checked at the backends: no reads reach it.
      await new Promise((r) => setTimeout(r, Math.max(0, pausedAt + budgetMs + 2 * interval - Date.now())));
      await resetStatementStats(info);
      for (let i = 0; i < 300; i++) await reader.query('SELECT count(*) FROM lag_probe WHERE v = 1');
      const during = await nodeStatementCalls(info, 'SELECT count(*) FROM lag_probe WHERE v =');
      expect(during[paused]).toBe(0);
      expect(during[other]).toBe(300);
      // 3. After resume it catches up and rejoins the rotation.
      await cluster.resumeReplay(paused);
      const backAfter = await until(() => {
        const n = snapshotOf(proxy).nodes.find((x) => x.name === paused)!;
        return n.lagSeconds !== null && n.lagSeconds * 1000 <= budgetMs;
      }, 10_000);
      console.log(`lag: replica back under budget ${backAfter}ms after resume`);
      await resetStatementStats(info);
      for (let i = 0; i < 300; i++) await reader.query('SELECT count(*) FROM lag_probe WHERE v = 1');
      const after = await nodeStatementCalls(info, 'SELECT count(*) FROM lag_probe WHERE v =');
      expect(after[paused]).toBeGreaterThan(100);
      expect(after[other]).toBeGreaterThan(100);
    } finally {
      writing = false;
      await load;
      await cluster.resumeReplay(paused);
      await reader.end();
      await writer.end();
      await proxy.stop();
    }
  }, 60_000);

  it('a /* max_lag */ hint applies its own budget; with every replica over budget, when_no_replica: error fails the read clearly', async () => {
    // Budget 1h for the cluster: the paused replica stays eligible unless a statement asks for less.
    const proxy = await startProxy({
      nodes: info.nodes,
      user: app,
      clusterYaml: '    routing:\n      max_replica_lag: { bytes: 1GB, time: 1h }\n      consistency: eventual\n      when_no_replica: error\n',
    });
    const writer = await appClient(info, primary, info.database);
    const reader = new pg.Client({ connectionString: proxy.url(info.database) });
    await reader.connect();
    try {
      await cluster.pauseReplay(paused);
      for (let i = 0; i < 20; i++) {
        await writer.query('INSERT INTO lag_probe (v) VALUES (2)');
        await new Promise((r) => setTimeout(r, 20));
      }
      await until(() => (snapshotOf(proxy).nodes.find((x) => x.name === paused)!.lagSeconds ?? 0) > 0.3, 10_000);
      // The other replica must have replayed the writes (a loaded CI machine lags it too).
      await until(() => snapshotOf(proxy).nodes.find((x) => x.name === other)!.lagBytes === 0, 10_000);
      // 1. A strict hint (200ms) keeps reads off the paused replica; without it both replicas serve.
      await resetStatementStats(info);
      for (let i = 0; i < 100; i++) await reader.query('/* max_lag=200ms */ SELECT count(*) FROM lag_probe WHERE v = 2');
      for (let i = 0; i < 100; i++) await reader.query('SELECT count(*) FROM lag_probe WHERE v >= 2');
      const hinted = await nodeStatementCalls(info, 'SELECT count(*) FROM lag_probe WHERE v =');
      const plain = await nodeStatementCalls(info, 'SELECT count(*) FROM lag_probe WHERE v >=');
      console.log(`max_lag hint: hinted reads ${JSON.stringify(hinted)}, plain reads ${JSON.stringify(plain)}`);
      expect(hinted).toMatchObject({ [primary]: 0, [paused]: 0, [other]: 100 });
      expect(plain[paused]).toBeGreaterThan(30);
      expect(plain[other]).toBeGreaterThan(30);
      // 2. Pause the other replica too: a hinted read finds no replica within 200ms and fails (no primary fallback).
      await cluster.pauseReplay(other);
      for (let i = 0; i < 20; i++) {
        await writer.query('INSERT INTO lag_probe (v) VALUES (2)');
        await new Promise((r) => setTimeout(r, 20));
      }
      await until(() => (snapshotOf(proxy).nodes.find((x) => x.name === other)!.lagSeconds ?? 0) > 0.3, 10_000);
      const err = await reader.query('/* max_lag=200ms */ SELECT 1').then(() => null, (e: Error & { code?: string }) => e);
      console.log(`when_no_replica: error: ${err?.code} ${err?.message}`);
      expect(err?.message).toMatch(/no replica is eligible for reads \(every replica is over the lag budget\)/);
      // The session goes on.
      expect((await reader.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    } finally {
      await cluster.resumeReplay(paused);
      await cluster.resumeReplay(other);
      await reader.end();
      await writer.end();
      await proxy.stop();
    }
  }, 60_000);
});
