import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { MariaCluster } from '../support/mariadb-cluster.js';
import type { RunningProxy } from '../support/proxy.js';
import { connectMysql } from '../../src/backend/mysql/connect.js';
import { Com, Status, framePacket } from '../../src/protocol/mysql/index.js';
import { connectThrough, rawCommand, serverIds, startMysqlProxy } from './mysql-proxy-support.js';

/**
 * Commands beyond plain queries through the MySQL proxy, against MariaDB:
 * KILL (SQL and COM_PROCESS_KILL) with proxy connection ids, SQL_CALC_FOUND_ROWS /
 * FOUND_ROWS(), packets of 16 MB and more in both directions.
 */
const info = inject('mariaCluster');
const app = info.users.app;
const cluster = MariaCluster.attach(info);
let proxy: RunningProxy;
let ids: Map<number, string>;

beforeAll(async () => {
  // Room for 20 MB rows and statements (new connections take the global value).
  for (const n of info.nodes) await cluster.query(n.name, 'SET GLOBAL max_allowed_packet = 67108864');
  await cluster.query('my0', 'DROP TABLE IF EXISTS app.big; CREATE TABLE app.big (id INT PRIMARY KEY, b LONGTEXT)');
  await cluster.query('my0', 'DROP TABLE IF EXISTS app.fr; CREATE TABLE app.fr (id INT PRIMARY KEY); INSERT INTO app.fr SELECT seq FROM app.seq_1_to_30');
  await cluster.waitForReplication();
  ids = await serverIds(info);
  proxy = await startMysqlProxy(info, { clusterYaml: '    routing:\n      consistency: eventual\n' });
});

afterAll(async () => {
  await proxy?.stop();
});

/** Waits until some node runs a statement whose text starts with `prefix`; returns that node. */
async function waitRunning(prefix: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    for (const n of info.nodes) {
      const rows = await cluster.query(n.name, `SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '${prefix}%'`);
      if (rows.length > 0) return n.name;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no node runs ${prefix}`);
}

describe('KILL through the proxy', () => {
  it('KILL QUERY <proxy id> stops a SELECT SLEEP(30) on its backend thread; the session goes on', async () => {
    const victim = await connectThrough(proxy, app);
    const killer = await connectThrough(proxy, app);
    const started = Date.now();
    const sleeping = victim.query<mysql.RowDataPacket[]>('SELECT SLEEP(30) AS s');
    const node = await waitRunning('SELECT SLEEP(30)');
    expect(['my1', 'my2']).toContain(node);
    const killedAt = Date.now();
    await killer.query(`KILL QUERY ${victim.threadId}`);
    // MariaDB ends an interrupted SLEEP() with error 1317 (MySQL returns 1 from SLEEP() instead).
    const outcome = await sleeping.then(
      ([rows]) => `sleep returned ${rows[0]!.s}`,
      (err: { errno: number }) => `error ${err.errno}`,
    );
    const ended = Date.now();
    expect(['error 1317', 'sleep returned 1']).toContain(outcome);
    console.log(`[mysql kill] SELECT SLEEP(30) on ${node} ended (${outcome}) ${ended - killedAt} ms after KILL QUERY was sent (${ended - started} ms after it started)`);
    // The issue: stopped within a second, measured from sending KILL QUERY to the SLEEP's answer.
    expect(ended - killedAt).toBeLessThan(1000);
    const [again] = await victim.query<mysql.RowDataPacket[]>('SELECT 7 AS seven');
    expect(again[0]!.seven).toBe(7);
    await victim.end();
    await killer.end();
  });

  it('KILL <proxy id> ends the other session; an unknown id gets 1094', async () => {
    const victim = await connectThrough(proxy, app);
    const killer = await connectThrough(proxy, app);
    await victim.query('SELECT 1');
    await killer.query(`KILL ${victim.threadId}`);
    await expect(victim.query('SELECT 1')).rejects.toThrow();
    const e = await killer.query('KILL QUERY 4000000000').then(
      () => null,
      (err: { errno: number }) => err,
    );
    expect(e?.errno).toBe(1094);
    await killer.end();
    victim.destroy();
  });

  /** Until no node runs a statement starting with `prefix` (its backend thread was killed); ms waited. */
  async function waitGone(prefix: string): Promise<number> {
    const t0 = Date.now();
    for (let i = 0; i < 200; i++) {
      let found = false;
      for (const n of info.nodes) {
        const rows = await cluster.query(n.name, `SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '${prefix}%'`);
        if (rows.length > 0) found = true;
      }
      if (!found) return Date.now() - t0;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`${prefix} still runs`);
  }

  /** A victim session through the proxy running `sql` (a SLEEP) on its backend; resolves to how its query ended. */
  async function sleepingVictim(sql: string): Promise<{ victim: mysql.Connection; ended: Promise<{ at: number; how: string }>; node: string }> {
    const victim = await connectThrough(proxy, app);
    victim.on('error', () => undefined);
    const ended = victim.query(sql).then(
      () => ({ at: Date.now(), how: 'returned' }),
      (err: { code?: string; errno?: number }) => ({ at: Date.now(), how: `error ${err.errno ?? err.code}` }),
    );
    const node = await waitRunning(sql);
    return { victim, ended, node };
  }

  it('KILL CONNECTION <proxy id> (SQL) with a valid id: the victim is disconnected, its backend thread is killed, the killer goes on', async () => {
    const killer = await connectThrough(proxy, app);
    const { victim, ended, node } = await sleepingVictim('SELECT SLEEP(31)');
    const sentAt = Date.now();
    const [ok] = await killer.query<mysql.ResultSetHeader>(`KILL CONNECTION ${victim.threadId}`);
    expect(ok.affectedRows).toBe(0);
    const end = await ended;
    // The client's connection is closed (not an SQL error): mysql2 reports the connection lost, or the
    // proxy first says 2013 (lost connection) when it sees the backend thread die before the kill returns.
    expect(end.how).toMatch(/PROTOCOL_CONNECTION_LOST|ECONNRESET|error 1927|error 2013/);
    const gone = await waitGone('SELECT SLEEP(31)');
    console.log(`[mysql kill] KILL CONNECTION: SLEEP on ${node} ended (${end.how}) ${end.at - sentAt} ms after it was sent; backend thread gone ${gone} ms later`);
    expect(end.at - sentAt).toBeLessThan(1000);
    await expect(victim.query('SELECT 1')).rejects.toThrow();
    const [r] = await killer.query<mysql.RowDataPacket[]>('SELECT 8 AS eight');
    expect(r[0]!.eight).toBe(8);
    await killer.end();
    victim.destroy();
  });

  it('a client that disconnects while its statement runs: the statement stops on its node (its backend thread is killed), other sessions go on', async () => {
    const other = await connectThrough(proxy, app);
    // (mysql2 never settles the query of a connection it destroyed: `ended` is not awaited.)
    const { victim, node } = await sleepingVictim('SELECT SLEEP(33)');
    const closedAt = Date.now();
    victim.destroy(); // the socket closes without COM_QUIT, mid-statement
    const gone = await waitGone('SELECT SLEEP(33)');
    console.log(`[mysql kill] client gone mid-statement: SLEEP on ${node} stopped ${Date.now() - closedAt} ms after the client closed (${gone} ms of polling)`);
    expect(Date.now() - closedAt).toBeLessThan(3000);
    const [r] = await other.query<mysql.RowDataPacket[]>('SELECT 9 AS nine');
    expect(r[0]!.nine).toBe(9);
    await other.end();
  });

  it('COM_PROCESS_KILL <proxy id> over a raw logged-in socket: OK, the victim is disconnected and its backend thread killed; unknown id 1094', async () => {
    const raw = await connectMysql({ host: '127.0.0.1', port: proxy.port, user: app.user, password: app.password, database: 'app' });
    try {
      const { victim, ended, node } = await sleepingVictim('SELECT SLEEP(32)');
      const kill = (id: number) => {
        const p = Buffer.alloc(5);
        p[0] = Com.PROCESS_KILL;
        p.writeUInt32LE(id, 1);
        return p;
      };
      const sentAt = Date.now();
      const answer = await rawCommand(raw, kill(victim.threadId!), false, 'single');
      expect(answer.length).toBe(1);
      expect(answer[0]![0]).toBe(0x00); // OK
      const end = await ended;
      expect(end.how).toMatch(/PROTOCOL_CONNECTION_LOST|ECONNRESET|error 1927|error 2013/);
      const gone = await waitGone('SELECT SLEEP(32)');
      console.log(`[mysql kill] COM_PROCESS_KILL: SLEEP on ${node} ended (${end.how}) ${end.at - sentAt} ms after it was sent; backend thread gone ${gone} ms later`);
      expect(end.at - sentAt).toBeLessThan(1000);
      victim.destroy();
      // An idle victim: disconnected too.
      const idle = await connectThrough(proxy, app);
      idle.on('error', () => undefined);
      await idle.query('SELECT 1');
      const again = await rawCommand(raw, kill(idle.threadId!), false, 'single');
      expect(again[0]![0]).toBe(0x00);
      await expect(idle.query('SELECT 1')).rejects.toThrow();
      idle.destroy();
      // An unknown id: ERR 1094, and the raw session goes on.
      const unknown = await rawCommand(raw, kill(4_000_000_000), false, 'single');
      expect(unknown[0]![0]).toBe(0xff);
      expect(unknown[0]!.readUInt16LE(1)).toBe(1094);
      const q = await rawCommand(raw, Buffer.concat([Buffer.from([Com.QUERY]), Buffer.from('SELECT 1')]), false, 'result');
      expect(q.length).toBe(5);
    } finally {
      raw.socket.destroy();
    }
  });
});

describe('SQL_CALC_FOUND_ROWS / FOUND_ROWS()', () => {
  /** Table fr has 30 rows, more than any LIMIT below. */
  type Row = mysql.RowDataPacket & { sid: number; cid: number };
  const CALC = 'SELECT SQL_CALC_FOUND_ROWS id, @@server_id AS sid, CONNECTION_ID() AS cid FROM fr WHERE id <= ? ORDER BY id LIMIT 3';
  const FOUND = 'SELECT FOUND_ROWS() AS n, @@server_id AS sid, CONNECTION_ID() AS cid';

  it('SQL_CALC_FOUND_ROWS runs on the primary and pins: FOUND_ROWS() there has its count, also right after a replica read that left a warning', async () => {
    const c = await connectThrough(proxy, app);
    const [rows] = await c.query<Row[]>(CALC, [30]);
    expect(rows.length).toBe(3);
    expect(ids.get(Number(rows[0]!.sid))).toBe('my0');
    const [found] = await c.query<Row[]>(FOUND);
    expect(Number(found[0]!.n)).toBe(30);
    expect(ids.get(Number(found[0]!.sid))).toBe('my0');
    expect(Number(found[0]!.cid)).toBe(Number(rows[0]!.cid));
    // Pinned: a plain read stays on that connection.
    const [after] = await c.query<Row[]>('SELECT @@server_id AS sid, CONNECTION_ID() AS cid');
    expect(Number(after[0]!.cid)).toBe(Number(rows[0]!.cid));
    await c.end();

    // A replica read that leaves a warning keeps its replica connection for SHOW WARNINGS; a
    // SQL_CALC_FOUND_ROWS after it must still go to the primary (and FOUND_ROWS() follow it there).
    const d = await connectThrough(proxy, app);
    const [warned] = await d.query<Row[]>("SELECT CAST('1x' AS SIGNED) AS w, @@server_id AS sid");
    expect(['my1', 'my2']).toContain(ids.get(Number(warned[0]!.sid)));
    const [rows2] = await d.query<Row[]>(CALC, [20]);
    expect(ids.get(Number(rows2[0]!.sid))).toBe('my0');
    const [found2] = await d.query<Row[]>(FOUND);
    expect(Number(found2[0]!.n)).toBe(20);
    expect(ids.get(Number(found2[0]!.sid))).toBe('my0');
    expect(Number(found2[0]!.cid)).toBe(Number(rows2[0]!.cid));
    await d.end();
  });

  it('prepared (COM_STMT_EXECUTE) and in 8 concurrent sessions x 10 rounds: every FOUND_ROWS() reads its own session\'s count on its connection', async () => {
    const p = await connectThrough(proxy, app);
    const [prows] = await p.execute<Row[]>(CALC, [25]);
    expect(ids.get(Number(prows[0]!.sid))).toBe('my0');
    const [pfound] = await p.execute<Row[]>(FOUND);
    expect(Number(pfound[0]!.n)).toBe(25);
    expect(Number(pfound[0]!.cid)).toBe(Number(prows[0]!.cid));
    await p.end();

    let checked = 0;
    await Promise.all(
      Array.from({ length: 8 }, async (_, k) => {
        const s = await connectThrough(proxy, app);
        for (let i = 0; i < 10; i++) {
          const limit = 4 + ((k * 10 + i) % 26); // 4..29: different counts per session and round
          const [r] = await s.query<Row[]>(CALC, [limit]);
          const [f] = await s.query<Row[]>(FOUND);
          expect(Number(f[0]!.n)).toBe(limit);
          expect(ids.get(Number(f[0]!.sid))).toBe('my0');
          expect(Number(f[0]!.cid)).toBe(Number(r[0]!.cid));
          checked++;
        }
        await s.end();
      }),
    );
    expect(checked).toBe(80);
  });
});

describe('a pinned session whose backend connection dies', () => {
  it('is closed rather than going on without its user variables', async () => {
    const c = await connectThrough(proxy, app);
    await c.query('SET @kept = 1');
    const [r] = await c.query<mysql.RowDataPacket[]>('SELECT CONNECTION_ID() AS id, @kept AS k');
    expect(r[0]!.k).toBe(1);
    await cluster.query('my0', `KILL ${Number(r[0]!.id)}`);
    await expect(c.query('SELECT @kept AS k')).rejects.toThrow();
    c.destroy();
    const d = await connectThrough(proxy, app);
    const [ok] = await d.query<mysql.RowDataPacket[]>('SELECT @kept AS k');
    expect(ok[0]!.k).toBeNull();
    await d.end();
  });
});

describe('packets of 16 MB and more', () => {
  it('carries a 20 MB statement to the primary and a 20 MB row back from a replica, text and binary protocol', async () => {
    const c = await connectThrough(proxy, app);
    const value = randomBytes(10 * 1024 * 1024).toString('hex'); // 20 MB of text
    const sha = createHash('sha1').update(value).digest('hex');
    await c.query('INSERT INTO big (id, b) VALUES (1, ?)', [value]); // one 20 MB COM_QUERY: two packets
    await c.execute('INSERT INTO big (id, b) VALUES (?, ?)', [2, value]); // a 20 MB COM_STMT_EXECUTE
    await cluster.waitForReplication();
    const [check] = await cluster.query<{ h: string }>('my0', 'SELECT GROUP_CONCAT(SHA1(b) ORDER BY id) AS h FROM app.big');
    expect(check!.h).toBe(`${sha},${sha}`);
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@server_id AS sid, b FROM big WHERE id = 1');
    expect(['my1', 'my2']).toContain(ids.get(Number(rows[0]!.sid)));
    expect(rows[0]!.b.length).toBe(value.length);
    expect(createHash('sha1').update(rows[0]!.b as string).digest('hex')).toBe(sha);
    const [brows] = await c.execute<mysql.RowDataPacket[]>('SELECT b FROM big WHERE id = ?', [2]);
    expect(createHash('sha1').update(brows[0]!.b as string).digest('hex')).toBe(sha);
    await c.end();
  });
});

describe('prepared statements on the wire (our codec as the client)', () => {
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };

  it('COM_STMT_SEND_LONG_DATA reaches whichever node executes; a cursor pins and COM_STMT_FETCH pages through it', async () => {
    const c = await connectMysql({ host: '127.0.0.1', port: proxy.port, user: app.user, password: app.password, database: 'app' });
    try {
      // 1. Long data: prepared on a replica, executed 6 times (alternating replicas), long data sent before each.
      const prep = await rawCommand(c, Buffer.concat([Buffer.from([Com.STMT_PREPARE]), Buffer.from("SELECT CONCAT(?, '!', @@server_id) AS v")]), false, 'prepare');
      const id = prep[0]!.readUInt32LE(1);
      expect(prep[0]!.readUInt16LE(7)).toBe(1);
      const nodes = new Set<string>();
      for (let i = 0; i < 6; i++) {
        for (const part of ['hel', `lo${i}`]) {
          c.socket.write(framePacket(Buffer.concat([Buffer.from([Com.STMT_SEND_LONG_DATA]), u32(id), Buffer.from([0, 0]), Buffer.from(part)]), 0).bytes);
        }
        // flags 0, 1 iteration, NULL bitmap 0, new-params-bound 1, type VAR_STRING; the value came as long data.
        const exec = Buffer.concat([Buffer.from([Com.STMT_EXECUTE]), u32(id), Buffer.from([0]), u32(1), Buffer.from([0, 1, 0xfd, 0])]);
        const res = await rawCommand(c, exec, false, 'result');
        // column count, column definition, EOF, one binary row, EOF.
        expect(res.length).toBe(5);
        const row = res[3]!.toString('latin1');
        const m = /hello(\d)!(\d+)/.exec(row);
        expect(m?.[1]).toBe(String(i));
        nodes.add(ids.get(Number(m![2]))!);
      }
      expect(nodes).toEqual(new Set(['my1', 'my2']));

      // 2. A read-only cursor: the execute answers with columns only, rows come by COM_STMT_FETCH on the same connection.
      const prep2 = await rawCommand(c, Buffer.concat([Buffer.from([Com.STMT_PREPARE]), Buffer.from('SELECT seq FROM seq_1_to_10')]), false, 'prepare');
      const id2 = prep2[0]!.readUInt32LE(1);
      const opened = await rawCommand(c, Buffer.concat([Buffer.from([Com.STMT_EXECUTE]), u32(id2), Buffer.from([1]), u32(1)]), false, 'result');
      const eof = opened[opened.length - 1]!;
      expect(eof.readUInt16LE(3) & Status.CURSOR_EXISTS).toBeTruthy();
      const first = await rawCommand(c, Buffer.concat([Buffer.from([Com.STMT_FETCH]), u32(id2), u32(4)]), false, 'rows');
      expect(first.length).toBe(4 + 1);
      const rest = await rawCommand(c, Buffer.concat([Buffer.from([Com.STMT_FETCH]), u32(id2), u32(100)]), false, 'rows');
      expect(rest.length).toBe(6 + 1);
      expect(rest[6]!.readUInt16LE(3) & Status.LAST_ROW_SENT).toBeTruthy();
      // The session goes on normally.
      const q = await rawCommand(c, Buffer.concat([Buffer.from([Com.QUERY]), Buffer.from('SELECT 1')]), false, 'result');
      expect(q.length).toBe(5);
    } finally {
      c.socket.destroy();
    }
  });
});
