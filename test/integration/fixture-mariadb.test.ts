import { describe, expect, inject, it } from 'vitest';
import { MariaCluster } from '../support/mariadb-cluster.js';

/** The MariaDB test cluster itself: real GTID replication, real controls. */
const my = MariaCluster.attach(inject('mariaCluster'));

describe('MariaDB test cluster', () => {
  it('has a writable primary and two read-only GTID replicas', async () => {
    for (const n of my.info.nodes) {
      const [row] = await my.query<{ ro: number }>(n.name, 'SELECT @@read_only AS ro');
      expect(row!.ro).toBe(n.role === 'replica' ? 1 : 0);
    }
    const [status] = await my.query<{ Using_Gtid: string; Slave_SQL_Running: string }>('my1', 'SHOW SLAVE STATUS');
    expect(status).toMatchObject({ Using_Gtid: 'Slave_Pos', Slave_SQL_Running: 'Yes' });
  });

  it('replicates a row written on the primary to every replica', async () => {
    const token = `row-${Date.now()}`;
    await my.query('my0', 'CREATE TABLE IF NOT EXISTS app.fixture_rows (v varchar(64))');
    await my.query('my0', 'INSERT INTO app.fixture_rows VALUES (?)', [token]);
    await my.waitForReplication();
    for (const r of ['my1', 'my2']) {
      expect(await my.query(r, 'SELECT v FROM app.fixture_rows WHERE v = ?', [token])).toEqual([{ v: token }]);
    }
  });

  it('the app user cannot write on a read-only replica', async () => {
    const mysql = await import('mysql2/promise');
    const n = my.node('my1');
    const c = await mysql.createConnection({ host: n.host, port: n.port, user: 'app', password: 'app', database: 'app' });
    try {
      await expect(c.query('CREATE TABLE nope (i int)')).rejects.toMatchObject({ errno: 1290 });
    } finally {
      await c.end();
    }
  });

  it('pausing the SQL thread makes lag grow while writes continue; resuming catches up', async () => {
    await my.query('my0', 'CREATE TABLE IF NOT EXISTS app.fixture_lag (n int)');
    await my.waitForReplication();
    await my.pauseReplay('my1');
    try {
      for (let i = 0; i < 25; i++) await my.query('my0', 'INSERT INTO app.fixture_lag VALUES (?)', [i]);
      expect(await my.lagTransactions('my1')).toBe(25);
      expect(await my.lagTransactions('my2')).toBeLessThan(25);
    } finally {
      await my.resumeReplay('my1');
    }
    await my.waitForReplication();
    expect(await my.lagTransactions('my1')).toBe(0);
  });

  it('counts statements per node (Com_select) for routing checks', async () => {
    const comSelect = async (node: string) => {
      const [row] = await my.query<{ Value: string }>(node, "SHOW GLOBAL STATUS LIKE 'Com_select'");
      return Number(row!.Value);
    };
    const before = await Promise.all(['my0', 'my1', 'my2'].map(comSelect));
    await my.query('my2', 'SELECT 1');
    const after = await Promise.all(['my0', 'my1', 'my2'].map(comSelect));
    // SHOW GLOBAL STATUS counts as Com_show_status, so only our SELECT moves Com_select.
    expect(after.map((a, i) => a - before[i]!)).toEqual([0, 0, 1]);
  });

  it('promoting a replica makes it writable (on a throwaway cluster)', async () => {
    const small = await MariaCluster.start({ replicas: 1 });
    try {
      await small.kill('my0');
      await small.promote('my1');
      await small.query('my1', 'CREATE TABLE app.x (i int)');
      const [ro] = await small.query<{ ro: number }>('my1', 'SELECT @@read_only AS ro');
      expect(ro!.ro).toBe(0);
      expect(small.pid('my0')).toBeNull();
    } finally {
      await small.stopAll();
    }
  });
});
