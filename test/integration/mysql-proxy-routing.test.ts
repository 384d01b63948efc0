import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import mysql from 'mysql2/promise';
import { MariaCluster } from '../support/mariadb-cluster.js';
import type { RunningProxy } from '../support/proxy.js';
import { PROBE_USER, connectThrough, delta, nodeCounters, prepareProbeUser, startMysqlProxy } from './mysql-proxy-support.js';

/**
 * Routing through the MySQL proxy, counted at the backends: MariaDB's
 * per-user statistics (USER_STATISTICS of a user only these tests log in as,
 * so the topology monitor's probes are not counted) and SHOW GLOBAL STATUS
 * Com_insert on the primary (the monitor never inserts; on replicas Com_insert
 * also counts the applying of replicated rows, so it says nothing there).
 */
const info = inject('mariaCluster');
const cluster = MariaCluster.attach(info);
let proxy: RunningProxy;

beforeAll(async () => {
  await prepareProbeUser(info);
  await cluster.query('my0', 'DROP TABLE IF EXISTS app.routing_probe; CREATE TABLE app.routing_probe (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20)); INSERT INTO app.routing_probe (v) VALUES (\'seed\')');
  await cluster.waitForReplication();
  proxy = await startMysqlProxy(info, { weights: { my0: 1, my1: 2, my2: 1 }, clusterYaml: '    routing:\n      consistency: eventual\n' });
});

afterAll(async () => {
  await proxy?.stop();
});

describe('MySQL routing, checked at the backends', () => {
  it('sends every write to the primary (mysql2 query, execute and a transaction)', async () => {
    const c = await connectThrough(proxy, PROBE_USER);
    const before = await nodeCounters(info);
    for (let i = 0; i < 50; i++) await c.query('INSERT INTO routing_probe (v) VALUES (?)', [`q${i}`]);
    for (let i = 0; i < 50; i++) await c.execute('INSERT INTO routing_probe (v) VALUES (?)', [`e${i}`]);
    await c.beginTransaction();
    await c.query("INSERT INTO routing_probe (v) VALUES ('tx')");
    await c.commit();
    await c.end();
    const after = await nodeCounters(info);
    // Com_insert counts the replicas' applying of replicated rows too, so only the primary's is exact here;
    // the per-user counters show that no replica ran any of it as a client statement.
    expect(delta(before, after, 'comInsert').my0).toBe(101);
    expect(delta(before, after, 'userUpdates')).toEqual({ my0: 101, my1: 0, my2: 0 });
  });

  it('splits 10,000 autocommit reads 2:1 over the replicas (weights 2 and 1), none on the primary', async () => {
    const c = await connectThrough(proxy, PROBE_USER);
    const before = await nodeCounters(info);
    for (let i = 0; i < 10_000; i++) await c.query('SELECT v FROM routing_probe WHERE id = 1');
    await c.end();
    const after = await nodeCounters(info);
    const selects = delta(before, after, 'userSelects');
    expect(selects.my0).toBe(0);
    expect(selects.my1! + selects.my2!).toBe(10_000);
    const ratio = selects.my1! / selects.my2!;
    console.log(`[mysql routing] 10,000 reads: my1 ${selects.my1}, my2 ${selects.my2}, ratio ${ratio.toFixed(4)}; Com_select deltas (monitor included) ${JSON.stringify(delta(before, after, 'comSelect'))}`);
    expect(ratio).toBeGreaterThan(2 * 0.95);
    expect(ratio).toBeLessThan(2 * 1.05);
  });

  it('routes prepared statements at execute: reads to replicas, writes to the primary, alternating', async () => {
    const c = await connectThrough(proxy, PROBE_USER);
    const before = await nodeCounters(info);
    const seen = new Set<number>();
    for (let i = 0; i < 100; i++) {
      const [rows] = await c.execute<mysql.RowDataPacket[]>('SELECT @@server_id AS sid, v FROM routing_probe WHERE id = ?', [1]);
      expect(rows[0]!.v).toBe('seed');
      seen.add(Number(rows[0]!.sid));
      const [r] = await c.execute<mysql.ResultSetHeader>('UPDATE routing_probe SET v = ? WHERE id = ?', [`u${i}`, 2]);
      expect(r.affectedRows).toBe(1);
    }
    await c.end();
    const after = await nodeCounters(info);
    const sel = delta(before, after, 'userSelects');
    const upd = delta(before, after, 'userUpdates');
    expect(sel.my0).toBe(0);
    expect(sel.my1! + sel.my2!).toBe(100);
    expect(sel.my1).toBeGreaterThan(0);
    expect(sel.my2).toBeGreaterThan(0);
    expect(upd).toEqual({ my0: 100, my1: 0, my2: 0 });
    expect(seen.size).toBe(2);
  });

  it('on the read-only listener: reads on replicas only, a write refused with 1290', async () => {
    const ro = await startMysqlProxy(info, { readOnlyListener: true });
    try {
      const c = await mysql.createConnection({ host: '127.0.0.1', port: ro.roPort!, user: PROBE_USER.user, password: PROBE_USER.password, database: 'app' });
      const before = await nodeCounters(info);
      for (let i = 0; i < 20; i++) await c.query('SELECT v FROM routing_probe WHERE id = 1');
      const e = await c.query("INSERT INTO routing_probe (v) VALUES ('ro')").then(
        () => null,
        (err: { errno: number }) => err,
      );
      expect(e?.errno).toBe(1290);
      await c.end();
      const after = await nodeCounters(info);
      const sel = delta(before, after, 'userSelects');
      expect(sel.my0).toBe(0);
      expect(sel.my1! + sel.my2!).toBe(20);
      expect(delta(before, after, 'userUpdates')).toEqual({ my0: 0, my1: 0, my2: 0 });
    } finally {
      await ro.stop();
    }
  });

  it('with consistency: causal (the default), a session reads its own writes at once', async () => {
    const causal = await startMysqlProxy(info);
    try {
      const c = await connectThrough(causal, PROBE_USER);
      for (let i = 0; i < 50; i++) {
        const [ins] = await c.query<mysql.ResultSetHeader>('INSERT INTO routing_probe (v) VALUES (?)', [`ryw${i}`]);
        const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT v FROM routing_probe WHERE id = ?', [ins.insertId]);
        expect(rows.map((r) => r.v)).toEqual([`ryw${i}`]);
      }
      await c.end();
    } finally {
      await causal.stop();
    }
  });
});
