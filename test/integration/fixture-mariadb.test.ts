import { existsSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MariaCluster } from '../support/mariadb-cluster.js';

/** The MariaDB test cluster itself: real GTID replication, real controls. */
const cluster = MariaCluster.attach(inject('mariaCluster'));

async function whoAmI(config: mysql.ConnectionOptions): Promise<string> {
  const c = await mysql.createConnection(config);
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u');
    return String(rows[0]!.u);
  } finally {
    await c.end();
  }
}

const comSelect = async (node: string) => {
  const [row] = await cluster.query<{ Value: string }>(node, "SHOW GLOBAL STATUS LIKE 'Com_select'");
  return Number(row!.Value);
};

describe('MariaDB test cluster (shared, left as found)', () => {
  it('has a writable primary and two read-only GTID replicas', async () => {
    expect(cluster.info.nodes.map((n) => [n.name, n.role])).toEqual([
      ['my0', 'primary'],
      ['my1', 'replica'],
      ['my2', 'replica'],
    ]);
    for (const n of cluster.info.nodes) {
      const [row] = await cluster.query<{ ro: number; ps: number }>(n.name, 'SELECT @@read_only AS ro, @@performance_schema AS ps');
      expect(row).toEqual({ ro: n.role === 'replica' ? 1 : 0, ps: 1 });
      expect(cluster.pid(n.name)).toBeGreaterThan(0);
    }
    for (const r of ['my1', 'my2']) {
      const [status] = await cluster.query<Record<string, string>>(r, 'SHOW SLAVE STATUS');
      expect(status).toMatchObject({ Using_Gtid: 'Slave_Pos', Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes', Master_Port: cluster.node('my0').port });
    }
  });

  it('root and app log in over TCP with their passwords; app cannot write on a replica', async () => {
    expect(await whoAmI(cluster.connectionInfo('my0'))).toBe('root@127.0.0.1');
    expect(await whoAmI(cluster.connectionInfo('my2', 'app'))).toBe('app@%');
    await expect(whoAmI({ ...cluster.connectionInfo('my0', 'app'), password: 'wrong' })).rejects.toMatchObject({ errno: 1045 });
    const c = await mysql.createConnection(cluster.connectionInfo('my1', 'app'));
    try {
      await expect(c.query('CREATE TABLE nope (i int)')).rejects.toMatchObject({ errno: 1290 });
    } finally {
      await c.end();
    }
  });

  it('replicates a row written on the primary to every replica', async () => {
    const token = `row-${Date.now()}`;
    await cluster.query('my0', 'CREATE TABLE IF NOT EXISTS app.fixture_rows (v varchar(64))');
    await cluster.query('my0', 'INSERT INTO app.fixture_rows VALUES (?)', [token]);
    await cluster.waitForReplication();
    for (const r of ['my1', 'my2']) {
      expect(await cluster.query(r, 'SELECT v FROM app.fixture_rows WHERE v = ?', [token])).toEqual([{ v: token }]);
    }
  });

  it('pausing the SQL thread makes lag grow while writes continue; resuming catches up', async () => {
    await cluster.query('my0', 'CREATE TABLE IF NOT EXISTS app.fixture_lag (n int)');
    await cluster.waitForReplication();
    expect(await cluster.lagBytes('my1')).toBe(0);
    await cluster.pauseReplay('my1');
    try {
      for (let i = 0; i < 25; i++) await cluster.query('my0', 'INSERT INTO app.fixture_lag VALUES (?)', [i]);
      expect(await cluster.lagTransactions('my1')).toBe(25);
      // 25 row events with their GTID and XID events: far more than 25 * 50 bytes.
      expect(await cluster.lagBytes('my1')).toBeGreaterThan(25 * 50);
      await expect(cluster.waitForReplication(1000)).rejects.toThrow(/my1/);
      expect(await cluster.lagBytes('my2')).toBe(0);
    } finally {
      await cluster.resumeReplay('my1');
    }
    await cluster.waitForReplication();
    expect(await cluster.lagTransactions('my1')).toBe(0);
    expect(await cluster.lagBytes('my1')).toBe(0);
  });

  it('counts statements per node (Com_select) for routing checks', async () => {
    const before = await Promise.all(['my0', 'my1', 'my2'].map(comSelect));
    await cluster.query('my2', 'SELECT 1');
    const after = await Promise.all(['my0', 'my1', 'my2'].map(comSelect));
    // SHOW GLOBAL STATUS counts as Com_show_status, so only our SELECT moves Com_select.
    expect(after.map((a, i) => a - before[i]!)).toEqual([0, 0, 1]);
  });
});

describe('MariaDB throwaway cluster (destructive controls)', () => {
  let small: MariaCluster;
  beforeAll(async () => {
    small = await MariaCluster.start({ replicas: 1 });
  });
  afterAll(async () => {
    await small?.stopAll();
  });

  it('a killed replica restarts and catches up on what it missed', async () => {
    await small.query('my0', 'CREATE TABLE app.t (i int)');
    await small.waitForReplication();
    await small.kill('my1');
    expect(small.pid('my1')).toBeNull();
    for (let i = 1; i <= 10; i++) await small.query('my0', 'INSERT INTO app.t VALUES (?)', [i]);
    await small.start('my1');
    await small.waitForReplication();
    expect(await small.query('my1', 'SELECT count(*) AS n FROM app.t')).toEqual([{ n: 10 }]);
  });

  it('promoting the replica after killing the primary makes it writable', async () => {
    await small.kill('my0');
    await small.promote('my1');
    expect(small.node('my1').role).toBe('primary');
    await small.query('my1', 'INSERT INTO app.t VALUES (11)');
    expect(await small.query('my1', 'SELECT @@read_only AS ro, max(i) AS m FROM app.t')).toEqual([{ ro: 0, m: 11 }]);
    expect(await small.query('my1', 'SHOW SLAVE STATUS')).toEqual([]);
  });

  it('stopAll stops every server and removes the temp dir', async () => {
    const pid = small.pid('my1');
    expect(pid).toBeGreaterThan(0);
    await small.stopAll();
    expect(() => process.kill(pid!, 0)).toThrow();
    expect(existsSync(small.info.baseDir)).toBe(false);
  });
});
