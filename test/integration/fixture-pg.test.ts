import { describe, expect, inject, it } from 'vitest';
import { PgCluster } from '../support/pg-cluster.js';

/** The PostgreSQL test cluster itself: real streaming replication, real controls. */
const pg = PgCluster.attach(inject('pgCluster'));

describe('PostgreSQL test cluster', () => {
  it('has a primary and two hot standbys', async () => {
    expect(pg.info.nodes.map((n) => [n.name, n.role])).toEqual([
      ['pg0', 'primary'],
      ['pg1', 'replica'],
      ['pg2', 'replica'],
    ]);
    for (const n of pg.info.nodes) {
      const [row] = await pg.query<{ r: boolean }>(n.name, 'SELECT pg_is_in_recovery() AS r');
      expect(row!.r).toBe(n.role === 'replica');
    }
  });

  it('replicates a row written on the primary to every replica', async () => {
    const token = `row-${Date.now()}`;
    await pg.query('pg0', 'CREATE TABLE IF NOT EXISTS fixture_rows (v text)', [], 'app');
    await pg.query('pg0', 'INSERT INTO fixture_rows VALUES ($1)', [token], 'app');
    await pg.waitForReplication();
    for (const r of ['pg1', 'pg2']) {
      const rows = await pg.query<{ v: string }>(r, 'SELECT v FROM fixture_rows WHERE v = $1', [token], 'app');
      expect(rows).toEqual([{ v: token }]);
    }
  });

  it('pausing replay makes lag grow while writes continue; resuming catches up', async () => {
    await pg.query('pg0', 'CREATE TABLE IF NOT EXISTS fixture_lag (n int)', [], 'app');
    await pg.waitForReplication();
    await pg.pauseReplay('pg1');
    try {
      const before = await pg.lagBytes('pg1');
      await pg.query('pg0', 'INSERT INTO fixture_lag SELECT generate_series(1, 20000)', [], 'app');
      const during = await pg.lagBytes('pg1');
      expect(during).toBeGreaterThan(before + 100_000);
      await pg.waitForReplication(5000).then(
        () => expect.unreachable('a paused replica must not catch up'),
        () => undefined,
      );
    } finally {
      await pg.resumeReplay('pg1');
    }
    await pg.waitForReplication();
    expect(await pg.lagBytes('pg1')).toBe(0);
  });

  it('counts statements per node in pg_stat_statements (what routing tests rely on)', async () => {
    for (const n of pg.info.nodes) await pg.query(n.name, 'SELECT pg_stat_statements_reset()', [], 'app');
    await pg.query('pg1', 'SELECT 4242 AS fixture_marker', [], 'app');
    const calls = async (node: string) => {
      const [row] = await pg.query<{ c: string | null }>(node, "SELECT sum(calls)::int AS c FROM pg_stat_statements WHERE query LIKE 'SELECT $1 AS fixture_marker%'", [], 'app');
      return Number(row!.c ?? 0);
    };
    expect([await calls('pg0'), await calls('pg1'), await calls('pg2')]).toEqual([0, 1, 0]);
  });

  it('promoting a replica makes it writable (on a throwaway cluster)', async () => {
    const small = await PgCluster.start({ replicas: 1 });
    try {
      await expect(small.query('pg1', 'CREATE TABLE x (i int)', [], 'app')).rejects.toThrow(/read-only transaction/);
      await small.stop('pg0');
      await small.promote('pg1');
      await small.query('pg1', 'CREATE TABLE x (i int)', [], 'app');
      await small.query('pg1', 'INSERT INTO x VALUES (1)', [], 'app');
      expect(await small.query('pg1', 'SELECT i FROM x', [], 'app')).toEqual([{ i: 1 }]);
      await small.kill('pg1');
      expect(small.pid('pg1')).toBeNull();
    } finally {
      await small.stopAll();
    }
  });
});
