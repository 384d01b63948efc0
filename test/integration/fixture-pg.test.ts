import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PgCluster } from '../support/pg-cluster.js';
import { cleanLeftovers, SERVERS_FILE } from '../support/reaper.js';

/** The PostgreSQL test cluster itself: real streaming replication, real controls. */
const cluster = PgCluster.attach(inject('pgCluster'));

async function connectAs(config: pg.ClientConfig): Promise<{ user: string; db: string }> {
  const c = new pg.Client(config);
  await c.connect();
  try {
    const { rows } = await c.query<{ user: string; db: string }>('SELECT current_user AS user, current_database() AS db');
    return rows[0]!;
  } finally {
    await c.end();
  }
}

describe('PostgreSQL test cluster (shared, left as found)', () => {
  it('has a primary and two hot standbys, each streaming from its slot', async () => {
    expect(cluster.info.nodes.map((n) => [n.name, n.role])).toEqual([
      ['pg0', 'primary'],
      ['pg1', 'replica'],
      ['pg2', 'replica'],
    ]);
    for (const n of cluster.info.nodes) {
      const [row] = await cluster.query<{ r: boolean }>(n.name, 'SELECT pg_is_in_recovery() AS r');
      expect(row!.r).toBe(n.role === 'replica');
      expect(cluster.pid(n.name)).toBeGreaterThan(0);
    }
    const slots = await cluster.query<{ slot_name: string; active: boolean }>('pg0', 'SELECT slot_name, active FROM pg_replication_slots ORDER BY slot_name');
    expect(slots).toEqual([
      { slot_name: 'slot_pg1', active: true },
      { slot_name: 'slot_pg2', active: true },
    ]);
  });

  it('lets the app user (SCRAM), md5user (MD5) and trustuser (trust) log in over TCP', async () => {
    expect(await connectAs(cluster.connectionInfo('pg1', 'app'))).toEqual({ user: 'app', db: 'app' });
    expect(await connectAs({ ...cluster.connectionInfo('pg0'), database: 'postgres' })).toEqual({ user: 'postgres', db: 'postgres' });
    const { host, port } = cluster.connectionInfo('pg2');
    expect(await connectAs({ host, port, user: 'md5user', password: 'md5pw', database: 'app' })).toEqual({ user: 'md5user', db: 'app' });
    expect(await connectAs({ host, port, user: 'trustuser', database: 'app' })).toEqual({ user: 'trustuser', db: 'app' });
    const stored = await cluster.query<{ rolname: string; scheme: string }>(
      'pg0',
      "SELECT rolname, split_part(rolpassword, '$', 1) AS scheme FROM pg_authid WHERE rolname IN ('app', 'md5user') ORDER BY rolname",
    );
    expect(stored[0]).toEqual({ rolname: 'app', scheme: 'SCRAM-SHA-256' });
    expect(stored[1]!.scheme).toMatch(/^md5[0-9a-f]{32}$/);
    await expect(connectAs({ ...cluster.connectionInfo('pg0', 'app'), password: 'wrong' })).rejects.toThrow(/password authentication failed/);
  });

  it('replicates a row written on the primary to every replica', async () => {
    const token = `row-${Date.now()}`;
    await cluster.query('pg0', 'CREATE TABLE IF NOT EXISTS fixture_rows (v text)', [], 'app');
    await cluster.query('pg0', 'INSERT INTO fixture_rows VALUES ($1)', [token], 'app');
    await cluster.waitForReplication();
    for (const r of ['pg1', 'pg2']) {
      const rows = await cluster.query<{ v: string }>(r, 'SELECT v FROM fixture_rows WHERE v = $1', [token], 'app');
      expect(rows).toEqual([{ v: token }]);
    }
  });

  it('pausing replay makes lag grow while writes continue; resuming catches up', async () => {
    await cluster.query('pg0', 'CREATE TABLE IF NOT EXISTS fixture_lag (n int)', [], 'app');
    await cluster.waitForReplication();
    await cluster.pauseReplay('pg1');
    try {
      const before = await cluster.lagBytes('pg1');
      await cluster.query('pg0', 'INSERT INTO fixture_lag SELECT generate_series(1, 20000)', [], 'app');
      expect(await cluster.lagBytes('pg1')).toBeGreaterThan(before + 100_000);
      // The other replica is not paused: it catches up while pg1 stays behind.
      await expect(cluster.waitForReplication(1000)).rejects.toThrow(/pg1/);
      expect(await cluster.lagBytes('pg2')).toBe(0);
    } finally {
      await cluster.resumeReplay('pg1');
    }
    await cluster.waitForReplication();
    expect(await cluster.lagBytes('pg1')).toBe(0);
  });

  it('counts statements per node in pg_stat_statements (what routing tests rely on)', async () => {
    for (const n of cluster.info.nodes) await cluster.query(n.name, 'SELECT pg_stat_statements_reset()', [], 'app');
    await cluster.query('pg1', 'SELECT 4242 AS fixture_marker', [], 'app');
    const calls = async (node: string) => {
      const [row] = await cluster.query<{ c: number | null }>(node, "SELECT sum(calls)::int AS c FROM pg_stat_statements WHERE query LIKE 'SELECT $1 AS fixture_marker%'", [], 'app');
      return Number(row!.c ?? 0);
    };
    expect([await calls('pg0'), await calls('pg1'), await calls('pg2')]).toEqual([0, 1, 0]);
  });
});

describe('PostgreSQL throwaway cluster (destructive controls)', () => {
  let small: PgCluster;
  beforeAll(async () => {
    small = await PgCluster.start({ replicas: 1 });
  });
  afterAll(async () => {
    await small?.stopAll();
  });

  it('a killed replica restarts and catches up on what it missed', async () => {
    await small.query('pg0', 'CREATE TABLE t (i int)', [], 'app');
    await small.kill('pg1');
    expect(small.pid('pg1')).toBeNull();
    await small.query('pg0', 'INSERT INTO t SELECT generate_series(1, 100)', [], 'app');
    await small.start('pg1');
    await small.waitForReplication();
    expect(await small.query('pg1', 'SELECT count(*)::int AS n FROM t', [], 'app')).toEqual([{ n: 100 }]);
  });

  it('promoting the replica after stopping the primary makes it writable', async () => {
    await expect(small.query('pg1', 'INSERT INTO t VALUES (0)', [], 'app')).rejects.toThrow(/read-only transaction/);
    await small.stop('pg0');
    expect(small.pid('pg0')).toBeNull();
    await small.promote('pg1');
    expect(small.node('pg1').role).toBe('primary');
    await small.query('pg1', 'INSERT INTO t VALUES (101)', [], 'app');
    expect(await small.query('pg1', 'SELECT max(i) AS m FROM t', [], 'app')).toEqual([{ m: 101 }]);
  });

  it('stopAll stops every server and removes the temp dir', async () => {
    const pid = small.pid('pg1');
    expect(pid).toBeGreaterThan(0);
    await small.stopAll();
    expect(() => process.kill(pid!, 0)).toThrow();
    expect(existsSync(small.info.baseDir)).toBe(false);
  });
});

describe('servers of a killed test run', () => {
  it('are stopped and their dir removed by the next run (cleanLeftovers)', async () => {
    const orphan = await PgCluster.start({ replicas: 0 });
    try {
      const pid = orphan.pid('pg0')!;
      expect(pid).toBeGreaterThan(0);
      // Pretend the owner died: a pid that certainly has exited.
      const deadOwner = Number(execFileSync('sh', ['-c', 'echo $$']).toString());
      writeFileSync(join(orphan.info.baseDir, SERVERS_FILE), JSON.stringify({ owner: deadOwner, pids: [pid] }));
      expect(cleanLeftovers()).toBeGreaterThanOrEqual(1);
      expect(existsSync(orphan.info.baseDir)).toBe(false);
      for (let waited = 0; waited < 10_000 && isRunning(pid); waited += 50) await new Promise((r) => setTimeout(r, 50));
      expect(isRunning(pid)).toBe(false);
    } finally {
      await orphan.stopAll();
    }
  });
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
