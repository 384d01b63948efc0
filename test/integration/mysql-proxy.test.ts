import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import mysql from 'mysql2/promise';
import { connectMysql } from '../../src/backend/mysql/connect.js';
import { BACKEND_CAPS } from '../../src/backend/mysql/connect.js';
import { Cap, Com } from '../../src/protocol/mysql/index.js';
import { MariaCluster } from '../support/mariadb-cluster.js';
import type { RunningProxy } from '../support/proxy.js';
import { PROBE_USER, connectThrough, prepareProbeUser, rawCommand, serverIds, startMysqlProxy, whichNode } from './mysql-proxy-support.js';

/**
 * The MySQL proxy with real clients (mysql2 here) against the MariaDB test
 * cluster (my0 primary, my1 and my2 GTID replicas). Which node ran a statement
 * is read from the answer itself (@@server_id), so every routing claim below
 * is the backend's word.
 */
const info = inject('mariaCluster');
const app = info.users.app;
const cluster = MariaCluster.attach(info);
let proxy: RunningProxy;
let ids: Map<number, string>;
const REPLICAS = ['my1', 'my2'];

beforeAll(async () => {
  await cluster.query(
    'my0',
    'CREATE DATABASE IF NOT EXISTS app2; GRANT ALL PRIVILEGES ON app2.* TO \'app\'@\'%\'; ' +
      'DROP TABLE IF EXISTS app.kv; CREATE TABLE app.kv (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100)); ' +
      'DROP TABLE IF EXISTS app2.marker; CREATE TABLE app2.marker (name VARCHAR(20)); INSERT INTO app2.marker VALUES (\'app2\')',
  );
  await prepareProbeUser(info);
  ids = await serverIds(info);
  // consistency eventual: reads after a write may go to replicas at once (causal reads are the topology tests' subject).
  proxy = await startMysqlProxy(info, { clusterYaml: '    routing:\n      consistency: eventual\n' });
});

afterAll(async () => {
  await proxy?.stop();
});

async function nodesOf(c: mysql.Connection, n: number, sql?: string): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add(await whichNode(c, ids, sql));
  return seen;
}

describe('login', () => {
  it('gives the client a proxy connection id and runs queries', async () => {
    const c = await connectThrough(proxy, app);
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT 1 AS one, CONNECTION_ID() AS backend_id');
    expect(rows[0]!.one).toBe(1);
    expect(c.threadId).toBeGreaterThan(0);
    await c.ping();
    await c.end();
  });

  it('answers unknown user and wrong password alike, with 1045', async () => {
    const errors: { errno: number; message: string }[] = [];
    for (const user of [{ user: 'app', password: 'wrong' }, { user: 'nosuchuser', password: 'x' }]) {
      const e = (await connectThrough(proxy, user).then(
        () => null,
        (err: { errno: number; message: string }) => err,
      ))!;
      expect(e).not.toBeNull();
      errors.push({ errno: e.errno, message: e.message.replace(user.user, 'U') });
    }
    expect(errors[0]!.errno).toBe(1045);
    expect(errors[1]).toEqual(errors[0]);
  });

  it('accepts caching_sha2_password (fast path) and mysql_native_password, refuses a wrong caching_sha2 token', async () => {
    for (const plugin of ['caching_sha2_password', 'mysql_native_password']) {
      const c = await connectMysql({ host: '127.0.0.1', port: proxy.port, user: app.user, password: app.password, database: 'app', firstPlugin: plugin });
      expect(c.threadId).toBeGreaterThan(0);
      c.socket.destroy();
    }
    await expect(connectMysql({ host: '127.0.0.1', port: proxy.port, user: app.user, password: 'bad', database: 'app', firstPlugin: 'caching_sha2_password' })).rejects.toThrow(/1045/);
  });

  it('fails the login with the server error for a database the user cannot use', async () => {
    const login = (port: number) =>
      mysql.createConnection({ host: '127.0.0.1', port, user: app.user, password: app.password, database: 'no_such_db' }).then(
        () => null,
        (err: { errno: number; message: string }) => err,
      );
    const direct = await login(info.nodes[0]!.port);
    const through = await login(proxy.port);
    // MariaDB says 1044 (access denied to that database) for a user with grants on app.* only.
    expect(direct?.errno).toBe(1044);
    expect(through?.errno).toBe(direct?.errno);
    expect(through?.message).toBe(direct?.message);
  });

  it('serves a client that sets DEPRECATE_EOF: rows end with an OK packet, multi-results too', async () => {
    const c = await connectMysql({ host: '127.0.0.1', port: proxy.port, user: app.user, password: app.password, database: 'app', capabilities: (BACKEND_CAPS | Cap.DEPRECATE_EOF) >>> 0 });
    try {
      expect(c.capabilities & Cap.DEPRECATE_EOF).toBeTruthy();
      const packets = await rawQuery(c, 'SELECT seq FROM seq_1_to_1000', true);
      // column count, 1 column definition, 1000 rows, the closing OK (no EOF after the columns).
      expect(packets).toBe(1 + 1 + 1000 + 1);
      expect(await rawQuery(c, 'SELECT 1; SELECT 2, 3', true)).toBe(4 + 5);
      // A transaction's status flags arrive in the OK that replaces EOF, and keep it on one node.
      expect(await rawQuery(c, 'BEGIN', true)).toBe(1);
      const inTx = await rawCommand(c, Buffer.concat([Buffer.from([Com.QUERY]), Buffer.from('SELECT @@server_id')]), true, 'result');
      const last = inTx[inTx.length - 1]!;
      expect(last[0]).toBe(0xfe);
      expect(last.readUInt16LE(3) & 0x1).toBe(1); // SERVER_STATUS_IN_TRANS (OK: 0xfe, 0 rows, 0 id, status)
      expect(await rawQuery(c, 'COMMIT', true)).toBe(1);
      // Prepared: the answer to COM_STMT_PREPARE has no EOFs; the binary resultset ends in an OK.
      const prep = await rawCommand(c, Buffer.concat([Buffer.from([Com.STMT_PREPARE]), Buffer.from('SELECT ? + 1 AS n')]), true, 'prepare');
      expect(prep.length).toBe(1 + 1 + 1); // PREPARE_OK, 1 parameter, 1 column
      const id = prep[0]!.readUInt32LE(1);
      const exec = Buffer.alloc(1 + 4 + 1 + 4 + 1 + 1 + 2 + 8);
      exec[0] = Com.STMT_EXECUTE;
      exec.writeUInt32LE(id, 1);
      exec.writeUInt32LE(1, 6);
      exec[11] = 1; // new-params-bound
      exec[12] = 0x08; // LONGLONG
      exec.writeBigInt64LE(41n, 14);
      const res = await rawCommand(c, exec, true, 'result');
      expect(res.length).toBe(1 + 1 + 1 + 1); // column count, column, row, OK
      expect(res[3]![0]).toBe(0xfe);
    } finally {
      c.socket.destroy();
    }
  });
});

/** Sends a COM_QUERY on a raw connection and counts the packets of its answer. */
async function rawQuery(c: Awaited<ReturnType<typeof connectMysql>>, sql: string, deprecateEof: boolean): Promise<number> {
  return (await rawCommand(c, Buffer.concat([Buffer.from([Com.QUERY]), Buffer.from(sql)]), deprecateEof, 'result')).length;
}

describe('other commands', () => {
  it('COM_FIELD_LIST and COM_STATISTICS are answered by a node; COM_PING without one', async () => {
    const c = await connectMysql({ host: '127.0.0.1', port: proxy.port, user: app.user, password: app.password, database: 'app' });
    try {
      const fields = await rawCommand(c, Buffer.concat([Buffer.from([Com.FIELD_LIST]), Buffer.from('kv\0')]), false, 'field_list');
      expect(fields.length).toBe(3); // id, v, EOF
      expect(fields[2]![0]).toBe(0xfe);
      const stats = await rawCommand(c, Buffer.from([Com.STATISTICS]), false, 'single');
      expect(stats[0]!.toString()).toMatch(/^Uptime: \d+/);
      const ping = await rawCommand(c, Buffer.from([Com.PING]), false, 'result');
      expect(ping[0]![0]).toBe(0x00);
    } finally {
      c.socket.destroy();
    }
  });

  it('COM_CHANGE_USER re-authenticates and starts the session afresh; a wrong password gets 1045', async () => {
    const c = await connectThrough(proxy, app);
    await c.query('SET @kept = 1');
    await c.changeUser({ user: PROBE_USER.user, password: PROBE_USER.password, database: 'app' });
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT CURRENT_USER() AS u, @kept AS k, DATABASE() AS db');
    expect(rows[0]!.u).toBe(`${PROBE_USER.user}@%`);
    expect(rows[0]!.k).toBeNull();
    expect(rows[0]!.db).toBe('app');
    const e = await c.changeUser({ user: app.user, password: 'wrong' }).then(
      () => null,
      (err: { errno: number }) => err,
    );
    expect(e?.errno).toBe(1045);
    c.destroy();
  });
});

describe('routing and transactions', () => {
  it('sends autocommit reads to the replicas and writes to the primary', async () => {
    const c = await connectThrough(proxy, app);
    expect(await nodesOf(c, 20)).toEqual(new Set(REPLICAS));
    const [r] = await c.query<mysql.ResultSetHeader>("INSERT INTO kv (v) VALUES ('a')");
    expect(r.affectedRows).toBe(1);
    // A write's node: the primary (its own insert is visible there at once).
    expect(await whichNode(c, ids, 'SELECT @@server_id AS id FROM kv WHERE id = LAST_INSERT_ID()')).toBe('my0');
    await c.end();
  });

  it('keeps a transaction on the primary from BEGIN to COMMIT, then reads go to replicas again', async () => {
    const c = await connectThrough(proxy, app);
    await c.query('BEGIN');
    expect(await nodesOf(c, 10)).toEqual(new Set(['my0']));
    await c.query("INSERT INTO kv (v) VALUES ('tx')");
    expect(await nodesOf(c, 5)).toEqual(new Set(['my0']));
    await c.query('COMMIT');
    expect(await nodesOf(c, 10)).toEqual(new Set(REPLICAS));
    await c.end();
  });

  it('sees the implicit commit of DDL from the status flags', async () => {
    const c = await connectThrough(proxy, app);
    await c.query('START TRANSACTION');
    await c.query("INSERT INTO kv (v) VALUES ('before ddl')");
    await c.query('CREATE TABLE IF NOT EXISTS kv_ddl (a INT)');
    // No COMMIT was sent, but the server ended the transaction: reads leave the primary.
    expect(await nodesOf(c, 10)).toEqual(new Set(REPLICAS));
    await c.end();
  });

  it('keeps SET autocommit=0 sessions on the primary until autocommit is back', async () => {
    const c = await connectThrough(proxy, app);
    await c.query('SET autocommit = 0');
    expect(await nodesOf(c, 5)).toEqual(new Set(['my0']));
    await c.query('COMMIT');
    expect(await nodesOf(c, 5)).toEqual(new Set(['my0']));
    await c.query('SET autocommit = 1');
    expect(await nodesOf(c, 10)).toEqual(new Set(REPLICAS));
    await c.end();
  });

  it('runs START TRANSACTION READ ONLY on one replica', async () => {
    const c = await connectThrough(proxy, app);
    await c.query('START TRANSACTION READ ONLY');
    const nodes = await nodesOf(c, 10);
    expect(nodes.size).toBe(1);
    expect(REPLICAS).toContain([...nodes][0]);
    await c.query('COMMIT');
    await c.end();
  });

  it('sends multi-statement text to the primary when any statement writes, else to a replica', async () => {
    const c = await connectThrough(proxy, app, { multipleStatements: true });
    const [w] = await c.query<mysql.RowDataPacket[][]>("SELECT @@server_id AS id; INSERT INTO kv (v) VALUES ('multi')");
    expect(ids.get(Number(w[0]![0]!.id))).toBe('my0');
    const [r] = await c.query<mysql.RowDataPacket[][]>('SELECT @@server_id AS id; SELECT 2 AS two');
    expect(REPLICAS).toContain(ids.get(Number(r[0]![0]!.id)));
    expect(r[1]![0]!.two).toBe(2);
    await c.end();
  });
});

describe('session state under transaction pooling', () => {
  it('replays USE, SET NAMES and SET SESSION on every replica connection, and leaks none of it to other sessions', async () => {
    const c = await connectThrough(proxy, app);
    await c.query('USE app2');
    await c.query('SET NAMES latin1');
    await c.query("SET SESSION time_zone = '+05:00', sql_mode = 'ANSI_QUOTES'");
    const nodes = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@server_id AS id, DATABASE() AS db, @@character_set_client AS cs, @@time_zone AS tz, @@sql_mode AS mode, (SELECT name FROM marker) AS m');
      const r = rows[0]!;
      nodes.add(ids.get(Number(r.id))!);
      expect([r.db, r.cs, r.tz, r.mode, r.m]).toEqual(['app2', 'latin1', '+05:00', 'ANSI_QUOTES', 'app2']);
    }
    expect(nodes).toEqual(new Set(REPLICAS));
    // COM_INIT_DB (mysql2 changeUser is not used: plain USE through the protocol command).
    await c.query('USE app');
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT DATABASE() AS db');
    expect(rows[0]!.db).toBe('app');
    await c.end();
    // Other sessions borrow the same pooled connections: they must see the defaults.
    const others = await Promise.all([0, 1, 2, 3].map(() => connectThrough(proxy, app)));
    for (const o of others) {
      for (let i = 0; i < 5; i++) {
        const [r2] = await o.query<mysql.RowDataPacket[]>('SELECT DATABASE() AS db, @@time_zone AS tz, @@sql_mode AS mode, @@character_set_client AS cs');
        expect(r2[0]!.db).toBe('app');
        expect(r2[0]!.tz).not.toBe('+05:00');
        expect(r2[0]!.mode).not.toBe('ANSI_QUOTES');
        expect(r2[0]!.cs).toBe('utf8mb4');
      }
    }
    await Promise.all(others.map((o) => o.end()));
  });

  it('pins a session that sets a user variable, creates a temporary table, takes GET_LOCK or LOCK TABLES', async () => {
    const c = await connectThrough(proxy, app);
    await c.query('SET @answer = 42');
    for (let i = 0; i < 10; i++) {
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @answer AS a, @@server_id AS id');
      expect(rows[0]!.a).toBe(42);
      expect(ids.get(Number(rows[0]!.id))).toBe('my0');
    }
    await c.end();

    const t = await connectThrough(proxy, app);
    await t.query('CREATE TEMPORARY TABLE scratch (a INT)');
    await t.query('INSERT INTO scratch VALUES (1), (2)');
    for (let i = 0; i < 5; i++) {
      const [rows] = await t.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM scratch');
      expect(Number(rows[0]!.n)).toBe(2);
    }
    await t.end();

    const l = await connectThrough(proxy, app);
    const [g] = await l.query<mysql.RowDataPacket[]>("SELECT GET_LOCK('sy_lock', 1) AS got");
    expect(g[0]!.got).toBe(1);
    const [held] = await l.query<mysql.RowDataPacket[]>("SELECT IS_USED_LOCK('sy_lock') = CONNECTION_ID() AS mine");
    expect(held[0]!.mine).toBe(1);
    await l.query('LOCK TABLES kv READ');
    const [k] = await l.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM kv');
    expect(Number(k[0]!.n)).toBeGreaterThan(0);
    await l.query('UNLOCK TABLES');
    await l.end();
  });

  it('runs LAST_INSERT_ID(), ROW_COUNT() and SHOW WARNINGS where the previous statement ran (8 sessions at once)', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => connectThrough(proxy, app)));
    await Promise.all(
      clients.map(async (c, k) => {
        for (let i = 0; i < 25; i++) {
          const [ins] = await c.query<mysql.ResultSetHeader>('INSERT INTO kv (v) VALUES (?)', [`c${k}-${i}`]);
          const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT LAST_INSERT_ID() AS id');
          expect(Number(rows[0]!.id)).toBe(ins.insertId);
          await c.query('UPDATE kv SET v = v WHERE id <= ?', [ins.insertId]);
          await c.query("UPDATE kv SET v = CONCAT(v, '!') WHERE id = ?", [ins.insertId]);
          const [rc] = await c.query<mysql.RowDataPacket[]>('SELECT ROW_COUNT() AS n');
          // Elsewhere it would be -1 (after a SELECT) or another session's count.
          expect(Number(rc[0]!.n)).toBe(1);
        }
        await c.query("SELECT CAST('12abc' AS SIGNED) AS x");
        const [w] = await c.query<mysql.RowDataPacket[]>('SHOW WARNINGS');
        expect(w.length).toBe(1);
        expect(w[0]!.Code).toBe(1292);
        await expect(c.query('SELECT * FROM no_such_table')).rejects.toThrow();
        const [errs] = await c.query<mysql.RowDataPacket[]>('SHOW ERRORS');
        expect(errs.map((r) => r.Code)).toEqual([1146]);
      }),
    );
    await Promise.all(clients.map((c) => c.end()));
  });

  it('answers COM_RESET_CONNECTION: user variables and settings are gone, the database stays', async () => {
    const c = await connectThrough(proxy, app);
    await c.query("SET @v = 'x'");
    await c.query("SET SESSION time_zone = '+03:00'");
    await c.reset();
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @v AS v, @@time_zone AS tz, DATABASE() AS db');
    expect(rows[0]!.v).toBeNull();
    expect(rows[0]!.tz).not.toBe('+03:00');
    expect(rows[0]!.db).toBe('app');
    await c.end();
  });
});

describe('admin endpoints for a mysql cluster', () => {
  it('/status says protocol mysql with the nodes and pools; /metrics counts its queries by node and route', async () => {
    const c = await connectThrough(proxy, app);
    for (let i = 0; i < 10; i++) await c.query('SELECT 1');
    await c.end();
    const status = (await (await fetch(`http://127.0.0.1:${proxy.adminPort}/status`)).json()) as { clusters: { protocol: string; primary: string; nodes: { name: string; role: string; up: boolean; pool: { idle: number } }[] }[] };
    const cl = status.clusters[0]!;
    expect(cl.protocol).toBe('mysql');
    expect(cl.primary).toBe('my0');
    expect(cl.nodes.map((n) => [n.name, n.role, n.up])).toEqual([['my0', 'primary', true], ['my1', 'replica', true], ['my2', 'replica', true]]);
    expect(cl.nodes.reduce((sum, n) => sum + n.pool.idle, 0)).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
    const replicaQueries = [...metrics.matchAll(/^switchyard_queries_total\{cluster="main",node="my[12]",route="replica"\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(replicaQueries).toBeGreaterThanOrEqual(10);
  });
});
