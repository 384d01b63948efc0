import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { connectMysql } from '../../src/backend/mysql/connect.js';
import { Com, MysqlPacketReader, framePacket, parseErr } from '../../src/protocol/mysql/index.js';
import type { RunningProxy } from '../support/proxy.js';
import { connectThrough, startMysqlProxy } from './mysql-proxy-support.js';

/**
 * Hostile input to the MySQL listener, before and after login: the client
 * gets an ERR packet where one can be framed and its connection is closed;
 * the process keeps serving, and 20 good sessions running meanwhile see no error.
 */
const info = inject('mariaCluster');
const app = info.users.app;
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startMysqlProxy(info, { clusterYaml: '' });
});

afterAll(async () => {
  await proxy?.stop();
});

/** Connects raw, waits for the handshake, sends `bytes` and half-closes, and collects what comes back until the proxy closes (or 5 s pass). */
function rawExchange(bytes: Buffer | ((handshakeSeq: number) => Buffer)): Promise<{ packets: Buffer[]; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: proxy.port });
    const reader = new MysqlPacketReader({ maxMessageSize: 1 << 24 });
    const packets: Buffer[] = [];
    let sent = false;
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ packets, closed: false });
    }, 5000);
    s.on('data', (chunk) => {
      for (const p of reader.push(chunk)) {
        packets.push(Buffer.from(p.payload));
        if (!sent) {
          sent = true;
          // Half-close after sending: an incomplete packet is then answered by the close, not by auth_timeout.
          s.end(typeof bytes === 'function' ? bytes(p.seq) : bytes);
        }
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ packets, closed: true });
    });
  });
}

/** A logged-in raw connection (our own codec as the client). */
async function loggedIn() {
  return connectMysql({ host: '127.0.0.1', port: proxy.port, user: app.user, password: app.password, database: 'app' });
}

/** Sends bytes on a logged-in raw connection; returns the packets received until `count` arrived or the proxy closed. */
function afterLogin(bytes: Buffer, count: number): Promise<{ packets: Buffer[]; closed: boolean }> {
  return loggedIn().then(
    (c) =>
      new Promise((resolve) => {
        const packets: Buffer[] = [];
        const done = (closed: boolean) => {
          clearTimeout(timer);
          resolve({ packets, closed });
        };
        const timer = setTimeout(() => {
          c.socket.destroy();
          resolve({ packets, closed: false });
        }, 5000);
        c.socket.on('data', (chunk: Buffer) => {
          for (const p of c.reader.push(chunk)) packets.push(Buffer.from(p.payload));
          if (packets.length >= count) {
            c.socket.destroy();
            done(false);
          }
        });
        c.socket.on('close', () => done(true));
        c.socket.write(bytes);
      }),
  );
}

const isErrPacket = (p: Buffer | undefined) => p !== undefined && p[0] === 0xff;

describe('hostile MySQL clients', () => {
  it('answers bad input with an error and a close, while 20 good sessions run unharmed', async () => {
    let stop = false;
    let goodQueries = 0;
    const goods = await Promise.all(Array.from({ length: 20 }, () => connectThrough(proxy, app)));
    const running = goods.map(async (c, k) => {
      // Bounded: at most 2,000 queries per session, and it stops when the hostile part is done.
      for (let i = 0; i < 2000 && !stop; i++) {
        const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT ? AS k, ? AS i', [k, i]);
        expect(rows[0]!.k).toBe(k);
        expect(rows[0]!.i).toBe(i);
        goodQueries++;
      }
    });

    // 1. HTTP instead of MySQL: the "length" is 5.5 MB, far over the login limit.
    const http = await rawExchange(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(http.closed).toBe(true);
    expect(isErrPacket(http.packets[1])).toBe(true);
    // 2. A command before login: COM_QUERY where the handshake response belongs.
    const early = await rawExchange(framePacket(Buffer.concat([Buffer.from([Com.QUERY]), Buffer.from('SELECT 1')]), 1).bytes);
    expect(early.closed).toBe(true);
    expect(isErrPacket(early.packets[1])).toBe(true);
    expect(parseErr(early.packets[1]!).errno).toBe(1047);
    // 3. A truncated handshake response (a well-framed packet, 10 bytes of it).
    const truncated = await rawExchange(framePacket(randomBytes(10), 1).bytes);
    expect(truncated.closed).toBe(true);
    expect(isErrPacket(truncated.packets[1])).toBe(true);
    // 4. A packet cut short, then the client vanishes: nothing to answer, nothing breaks.
    await new Promise<void>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: proxy.port }, () => {
        s.end(Buffer.from([100, 0, 0, 1, 1, 2, 3]));
      });
      s.resume(); // read, so the proxy's close is seen
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
    // 5. After login: an unknown command gets 1047 and the connection stays usable (COM_PING answers).
    const unknown = await afterLogin(Buffer.concat([framePacket(Buffer.from([0x7f, 1, 2]), 0).bytes, framePacket(Buffer.from([Com.PING]), 0).bytes]), 2);
    expect(parseErr(unknown.packets[0]!).errno).toBe(1047);
    expect(unknown.packets[1]![0]).toBe(0x00);
    // 6. After login: a statement command naming no statement, and a truncated one.
    const stmt = await afterLogin(Buffer.concat([framePacket(Buffer.from([Com.STMT_EXECUTE, 9, 9, 9, 9, 0, 1, 0, 0, 0]), 0).bytes, framePacket(Buffer.from([Com.STMT_EXECUTE, 1]), 0).bytes]), 2);
    expect(parseErr(stmt.packets[0]!).errno).toBe(1243);
    expect(isErrPacket(stmt.packets[1])).toBe(true);
    // 7. After login: a split packet whose sequence ids do not follow: framing is lost, ERR and close.
    const header = Buffer.from([0xff, 0xff, 0xff, 0]);
    const bad = Buffer.concat([header, Buffer.alloc(0xffffff, 0x41), Buffer.from([1, 0, 0, 7, 0x41])]);
    bad[4] = Com.QUERY;
    const badSeq = await afterLogin(bad, 1);
    expect(badSeq.closed || isErrPacket(badSeq.packets[0])).toBe(true);
    // 8. Random bytes after the handshake, 100 times.
    for (let i = 0; i < 100; i++) {
      const r = await rawExchange(randomBytes(1 + (i % 64)));
      expect(r.packets.length).toBeGreaterThanOrEqual(1); // at least the handshake
      if (r.packets.length > 1) expect(isErrPacket(r.packets[r.packets.length - 1])).toBe(true);
    }

    stop = true;
    await Promise.all(running);
    expect(goodQueries).toBeGreaterThan(20);
    console.log(`[mysql hostile] 20 good sessions ran ${goodQueries} queries without an error during the hostile input`);
    // The proxy still logs clients in.
    const after = await connectThrough(proxy, app);
    await after.query('SELECT 1');
    await after.end();
    await Promise.all(goods.map((c) => c.end()));
  });
});
