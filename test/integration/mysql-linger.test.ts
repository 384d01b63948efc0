import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import mysql from 'mysql2/promise';
import { MariaCluster } from '../support/mariadb-cluster.js';
import type { RunningProxy } from '../support/proxy.js';
import { connectThrough, startMysqlProxy } from './mysql-proxy-support.js';

/**
 * The linger after a write (LAST_INSERT_ID(), ROW_COUNT() run where the write
 * ran) yields to pool pressure: with pool.size 2, clients that wrote and went
 * idle do not starve others, and what they read afterwards is still theirs.
 */
const info = inject('mariaCluster');
const app = info.users.app;
const cluster = MariaCluster.attach(info);
let proxy: RunningProxy;

beforeAll(async () => {
  await cluster.query('my0', 'DROP TABLE IF EXISTS app.linger; CREATE TABLE app.linger (id BIGINT AUTO_INCREMENT PRIMARY KEY, who INT NOT NULL, n INT NOT NULL DEFAULT 0)');
  await cluster.waitForReplication();
  proxy = await startMysqlProxy(info, { clusterYaml: '    pool:\n      size: 2\n      acquire_timeout: 3s\n    routing:\n      consistency: eventual\n' });
});

afterAll(async () => {
  await proxy?.stop();
});

async function rowsAt(node: string, sql: string): Promise<number> {
  const [r] = await cluster.query<{ n: number }>(node, sql);
  return Number(r!.n);
}

describe('linger under pool pressure (pool.size 2)', () => {
  it('8 clients insert and go idle; then they and 4 new clients all run statements: no acquire timeout', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => connectThrough(proxy, app)));
    const ids: number[] = [];
    for (const [i, c] of clients.entries()) {
      const [r] = await c.query<mysql.ResultSetHeader>('INSERT INTO linger (who) VALUES (?)', [i]);
      ids.push(r.insertId);
    }
    // All idle now, each right after a write.
    const fresh = await Promise.all(Array.from({ length: 4 }, () => connectThrough(proxy, app)));
    const started = Date.now();
    await Promise.all([
      ...clients.map(async (c, i) => {
        const [r] = await c.query<mysql.RowDataPacket[]>('SELECT LAST_INSERT_ID() AS id');
        expect(Number(r[0]!.id)).toBe(ids[i]);
        await c.query('INSERT INTO linger (who) VALUES (?)', [100 + i]);
        await c.query('UPDATE linger SET n = n + 1 WHERE who = ?', [i]);
      }),
      ...fresh.map(async (c, i) => {
        await c.query('INSERT INTO linger (who) VALUES (?)', [200 + i]);
        await c.query('SELECT 1');
      }),
    ]);
    const took = Date.now() - started;
    console.log(`[mysql linger] 12 clients on a pool of 2 after 8 idle writers: ${took} ms`);
    expect(took).toBeLessThan(2000);
    for (const c of [...clients, ...fresh]) await c.end();
    expect(await rowsAt('my0', 'SELECT COUNT(*) AS n FROM app.linger WHERE who >= 100')).toBe(12);
  });

  it('LAST_INSERT_ID() and ROW_COUNT() stay each client’s own under pressure: 8 clients x 50 rounds', async () => {
    await cluster.query('my0', 'TRUNCATE app.linger');
    const rounds = 50;
    const clients = await Promise.all(Array.from({ length: 8 }, () => connectThrough(proxy, app)));
    const wrong: string[] = [];
    const started = Date.now();
    await Promise.all(
      clients.map(async (c, i) => {
        for (let k = 0; k < rounds; k++) {
          const [ins] = await c.query<mysql.ResultSetHeader>('INSERT INTO linger (who) VALUES (?)', [i]);
          const sql = k % 3 === 0 ? 'SELECT LAST_INSERT_ID()' : k % 3 === 1 ? 'SELECT LAST_INSERT_ID() AS id;' : 'select last_insert_id() id';
          const [r] = await c.query<mysql.RowDataPacket[]>(sql);
          const got = Number(Object.values(r[0]!)[0]);
          if (got !== ins.insertId) wrong.push(`client ${i} round ${k}: LAST_INSERT_ID() ${got}, insertId ${ins.insertId}`);
          // ROW_COUNT() after an UPDATE of this client's rows: k + 1 of them.
          const [upd] = await c.query<mysql.ResultSetHeader>('UPDATE linger SET n = n + 1 WHERE who = ?', [i]);
          const [rc] = await c.query<mysql.RowDataPacket[]>(k % 2 === 0 ? 'SELECT ROW_COUNT()' : 'SELECT ROW_COUNT() AS rc');
          const rows = Number(Object.values(rc[0]!)[0]);
          if (rows !== upd.affectedRows || rows !== k + 1) wrong.push(`client ${i} round ${k}: ROW_COUNT() ${rows}, affectedRows ${upd.affectedRows}, expected ${k + 1}`);
        }
      }),
    );
    console.log(`[mysql linger] 8 clients x ${rounds} rounds (INSERT, LAST_INSERT_ID(), UPDATE, ROW_COUNT()) on a pool of 2: ${Date.now() - started} ms`);
    expect(wrong).toEqual([]);
    for (const c of clients) await c.end();
    // Nothing lost at the backend: every INSERT and every UPDATE ran once.
    expect(await rowsAt('my0', 'SELECT COUNT(*) AS n FROM app.linger')).toBe(8 * rounds);
    for (let i = 0; i < 8; i++) {
      // Row j (0-based, inserted in round j) was updated in rounds j..49: 50 - j times.
      expect(await rowsAt('my0', `SELECT SUM(n) AS n FROM app.linger WHERE who = ${i}`)).toBe((rounds * (rounds + 1)) / 2);
    }
  });

  it('prepared (mysql2 execute): LAST_INSERT_ID() stays each client’s own, 8 clients x 30 rounds, re-prepared every 3rd round', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => connectThrough(proxy, app)));
    const wrong: string[] = [];
    await Promise.all(
      clients.map(async (c, i) => {
        for (let k = 0; k < 30; k++) {
          const [ins] = await c.execute<mysql.ResultSetHeader>('INSERT INTO linger (who) VALUES (?)', [300 + i]);
          // COM_STMT_PREPARE + COM_STMT_EXECUTE between the INSERT and its answer, not only an execute.
          if (k % 3 === 0) c.unprepare('SELECT LAST_INSERT_ID() AS id');
          const [r] = await c.execute<mysql.RowDataPacket[]>('SELECT LAST_INSERT_ID() AS id');
          if (Number(r[0]!.id) !== ins.insertId) wrong.push(`client ${i} round ${k}: ${r[0]!.id} vs ${ins.insertId}`);
        }
      }),
    );
    expect(wrong).toEqual([]);
    for (const c of clients) await c.end();
    expect(await rowsAt('my0', 'SELECT COUNT(*) AS n FROM app.linger WHERE who >= 300 AND who < 400')).toBe(8 * 30);
  });

  it('after the linger went back: dependent texts that cannot be answered fail loudly; INSERT ... LAST_INSERT_ID() gets the right id', async () => {
    await cluster.query('my0', 'DROP TABLE IF EXISTS app.linger_child; CREATE TABLE app.linger_child (parent BIGINT NOT NULL)');
    const a = await connectThrough(proxy, app);
    const [ins] = await a.query<mysql.ResultSetHeader>('INSERT INTO linger (who) VALUES (999)');
    // Two other clients take the pool (size 2): a's lingering connection must go back for the second.
    const b = await connectThrough(proxy, app);
    const c = await connectThrough(proxy, app);
    await b.query('BEGIN');
    await b.query('SELECT 1 FROM linger LIMIT 1 FOR UPDATE');
    await c.query('BEGIN');
    await c.query('SELECT 1 FROM linger LIMIT 1 FOR UPDATE SKIP LOCKED');
    await b.query('COMMIT');
    await c.query('COMMIT');
    // a's next dependent statement runs on another connection, given a's LAST_INSERT_ID() first.
    await a.query('INSERT INTO linger_child (parent) VALUES (LAST_INSERT_ID())');
    expect(await rowsAt('my0', 'SELECT MAX(parent) AS n FROM app.linger_child')).toBe(ins.insertId);
    // SHOW WARNINGS after a linger given back: empty (only statements without warnings yield).
    await a.query('INSERT INTO linger (who) VALUES (998)');
    await b.query('BEGIN');
    await b.query('SELECT 1 FROM linger LIMIT 1 FOR UPDATE');
    await c.query('BEGIN');
    await c.query('SELECT 1 FROM linger LIMIT 1 FOR UPDATE SKIP LOCKED');
    await b.query('COMMIT');
    await c.query('COMMIT');
    const [w] = await a.query<mysql.RowDataPacket[]>('SHOW WARNINGS');
    expect(w).toEqual([]);
    // ROW_COUNT() inside a larger text cannot be restored elsewhere: an error, not a wrong number.
    await a.query('UPDATE linger SET n = n WHERE who = 998');
    await b.query('BEGIN');
    await b.query('SELECT 1 FROM linger LIMIT 1 FOR UPDATE');
    await c.query('BEGIN');
    await c.query('SELECT 1 FROM linger LIMIT 1 FOR UPDATE SKIP LOCKED');
    await b.query('COMMIT');
    await c.query('COMMIT');
    await expect(a.query('SELECT ROW_COUNT() + 0 AS n')).rejects.toThrow(/went back to the pool/);
    // A statement with warnings keeps its connection regardless of waiters: SHOW WARNINGS sees them.
    await a.query("INSERT INTO linger (who) VALUES ('12x')").catch(() => undefined);
    const [w2] = await a.query<mysql.RowDataPacket[]>('SHOW WARNINGS');
    expect(w2.length).toBeGreaterThan(0);
    for (const x of [a, b, c]) await x.end();
  });
});
