import { afterAll, describe, expect, inject, it } from 'vitest';
import net from 'node:net';
import mysql from 'mysql2/promise';
import { MysqlPacketReader, parseErr } from '../../src/protocol/mysql/index.js';
import { startProxy, type RunningProxy } from '../support/proxy.js';

/**
 * Issue 10, item 2 (MySQL): limits against the real MariaDB test cluster, with
 * mysql2 as the client. max_client_connections (1040), max_message_size (1153
 * and a close), auth_timeout for silent and slowloris clients (1159), and
 * client_idle_timeout (1159, SWITCHYARD_CLIENT_IDLE_TIMEOUT in src/errors.ts).
 * No speed assertions: waits are bounded only so that a hang fails.
 */
const info = inject('mariaCluster');
const app = info.users.app;
const proxies: RunningProxy[] = [];

afterAll(async () => {
  for (const p of proxies) await p.stop();
});

async function proxyWith(topYaml: string, clusterYaml = ''): Promise<RunningProxy> {
  const p = await startProxy({ protocol: 'mysql', nodes: info.nodes, user: app, topYaml, clusterYaml });
  proxies.push(p);
  return p;
}

interface Watched {
  conn: mysql.Connection;
  /** Errors emitted outside a query (an ERR while idle, the close). */
  errors: (Error & { errno?: number; code?: string })[];
}

async function connect(p: RunningProxy): Promise<Watched> {
  const conn = await mysql.createConnection({ host: '127.0.0.1', port: p.port, user: app.user, password: app.password, database: 'app' });
  const errors: Watched['errors'] = [];
  conn.on('error', (e) => errors.push(e));
  return { conn, errors };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await sleep(50);
  }
  return check();
}

const poolActive = (p: RunningProxy) => p.app.status().clusters.flatMap((c) => c.nodes).reduce((a, n) => a + n.pool.active, 0);
const clientConnections = (p: RunningProxy) => (p.app.status().clusters[0] as unknown as { client_connections: number }).client_connections;

/** A raw client: the packets it received and when the proxy closed it. */
function raw(p: RunningProxy) {
  const socket = net.connect({ host: '127.0.0.1', port: p.port });
  const reader = new MysqlPacketReader({ maxMessageSize: 1 << 24 });
  const packets: Buffer[] = [];
  let closed = false;
  socket.on('data', (d) => { for (const pk of reader.push(d)) packets.push(Buffer.from(pk.payload)); });
  socket.on('error', () => undefined);
  const closedP = new Promise<void>((resolve) => socket.once('close', () => { closed = true; resolve(); }));
  return { socket, packets, closed: closedP, isClosed: () => closed };
}

describe('max_client_connections (MySQL)', () => {
  it('the extra client gets 1040 and nothing else; admitted sessions (one mid-transaction) keep working; a freed slot is reusable', async () => {
    const p = await proxyWith('limits:\n  max_client_connections: 3\n');
    const admitted = [await connect(p), await connect(p), await connect(p)];
    await admitted[0]!.conn.query('BEGIN');
    await admitted[0]!.conn.query('SET @in_tx = 7');
    // The refused client: ERR 1040 as the first packet, and nothing else.
    const r = raw(p);
    await r.closed;
    expect(r.packets.length).toBe(1);
    expect(parseErr(r.packets[0]!).errno).toBe(1040);
    await expect(mysql.createConnection({ host: '127.0.0.1', port: p.port, user: app.user, password: app.password })).rejects.toMatchObject({ errno: 1040 });
    // The admitted ones were not touched: the transaction is still open on the same connection.
    const [tx] = await admitted[0]!.conn.query<mysql.RowDataPacket[]>('SELECT @in_tx AS v, @@in_transaction AS t');
    expect(Number(tx[0]!.v)).toBe(7);
    expect(Number(tx[0]!.t)).toBe(1);
    await admitted[0]!.conn.query('COMMIT');
    for (const a of admitted) {
      const [rows] = await a.conn.query<mysql.RowDataPacket[]>('SELECT 41 + 1 AS v');
      expect(Number(rows[0]!.v)).toBe(42);
      expect(a.errors).toEqual([]);
    }
    await admitted[2]!.conn.end();
    expect(await until(() => clientConnections(p) === 2, 5000)).toBe(true);
    const next = await connect(p);
    await next.conn.query('SELECT 1');
    await next.conn.end();
    for (const a of admitted.slice(0, 2)) await a.conn.end();
  });
});

describe('max_message_size (MySQL)', () => {
  it('an oversized packet gets ERR 1153 and a close; another session is unaffected; no backend connection leaks', async () => {
    const p = await proxyWith('limits:\n  max_message_size: 256kB\n');
    const bystander = await connect(p);
    const victim = await connect(p);
    const big = 'x'.repeat(300 * 1024);
    const err = await victim.conn.query(`SELECT '${big}' AS v`).then(() => null, (e: { errno?: number; message: string }) => e);
    expect(err).not.toBeNull();
    expect(err!.errno).toBe(1153);
    expect(err!.message).toMatch(/exceeds/);
    // The connection is closed: the next query fails without reaching a server.
    await expect(victim.conn.query('SELECT 1')).rejects.toThrow();
    // A packet just under the limit still works on another session.
    const [rows] = await bystander.conn.query<mysql.RowDataPacket[]>(`SELECT LENGTH('${'y'.repeat(200 * 1024)}') AS n`);
    expect(Number(rows[0]!.n)).toBe(200 * 1024);
    expect(bystander.errors).toEqual([]);
    await bystander.conn.end();
    expect(await until(() => poolActive(p) === 0, 5000)).toBe(true);
    console.log('[mysql limits] 300 kB packet over a 256 kB max_message_size: ERR 1153 and close');
  });
});

describe('auth_timeout (MySQL)', () => {
  it('a silent client and a slowloris client are closed with ERR 1159; a normal login meanwhile succeeds', async () => {
    const p = await proxyWith('limits:\n  auth_timeout: 1s\n');
    const t0 = performance.now();
    const silent = raw(p);
    // Slowloris: a HandshakeResponse announced as 100 bytes, one byte every 100 ms (bounded: 100 bytes).
    const slow = raw(p);
    await until(() => slow.packets.length >= 1, 5000);
    slow.socket.write(Buffer.from([100, 0, 0, 1]));
    let dribbled = 0;
    const dribble = setInterval(() => {
      if (slow.isClosed() || dribbled >= 100) return clearInterval(dribble);
      slow.socket.write(Buffer.from([0x41]));
      dribbled++;
    }, 100);
    const good = await connect(p);
    await good.conn.query('SELECT 1');
    let timedOut = false;
    await Promise.race([Promise.all([silent.closed, slow.closed]), sleep(8000).then(() => { timedOut = true; })]);
    clearInterval(dribble);
    expect(timedOut).toBe(false);
    for (const c of [silent, slow]) {
      expect(c.packets.length).toBe(2); // the handshake, then the ERR
      expect(parseErr(c.packets[1]!).errno).toBe(1159);
    }
    expect(dribbled).toBeLessThan(100); // closed while still dribbling
    // The logged-in session is not subject to auth_timeout.
    await sleep(300);
    const [rows] = await good.conn.query<mysql.RowDataPacket[]>('SELECT 2 AS v');
    expect(Number(rows[0]!.v)).toBe(2);
    expect(good.errors).toEqual([]);
    await good.conn.end();
    console.log(`[mysql limits] auth_timeout 1s: silent and slowloris (${dribbled} bytes dribbled) clients closed with 1159 after ${Math.round(performance.now() - t0)} ms`);
  });
});

describe('client_idle_timeout (MySQL)', () => {
  it('an idle session gets ERR 1159 and is closed, its transaction rolled back; a busy one is not; backend connections go back', async () => {
    const p = await proxyWith('limits:\n  client_idle_timeout: 1s\n', '    pool:\n      size: 4\n');
    const idle = await connect(p);
    const idleTx = await connect(p);
    const busy = await connect(p);
    await idleTx.conn.query('CREATE TABLE IF NOT EXISTS idle_probe (id INT PRIMARY KEY)');
    await idleTx.conn.query('DELETE FROM idle_probe');
    await idleTx.conn.query('BEGIN');
    await idleTx.conn.query('INSERT INTO idle_probe VALUES (1)');
    expect(poolActive(p)).toBeGreaterThan(0); // the open transaction holds its connection
    // The busy session runs a 2.5 s statement: time waiting for its own answer is not idleness.
    const [slept] = await busy.conn.query<mysql.RowDataPacket[]>('SELECT SLEEP(2.5) AS s');
    expect(Number(slept[0]!.s)).toBe(0);
    for (const w of [idle, idleTx]) {
      expect(await until(() => w.errors.length > 0, 5000)).toBe(true);
      // mysql2 reports an ERR that arrives between commands with the errno in `code`.
      expect(w.errors[0]!.errno ?? Number(w.errors[0]!.code)).toBe(1159);
    }
    expect(idle.errors[0]!.message).toMatch(/client_idle_timeout/);
    await expect(idle.conn.query('SELECT 1')).rejects.toThrow();
    // The open transaction was rolled back, and no backend connection is left active.
    expect(await until(() => poolActive(p) === 0, 5000)).toBe(true);
    const check = await connect(p);
    const [rows] = await check.conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM idle_probe');
    expect(Number(rows[0]!.n)).toBe(0);
    await check.conn.end();
    await busy.conn.end().catch(() => undefined);
  });
});
