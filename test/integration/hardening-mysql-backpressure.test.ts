import { describe, expect, inject, it } from 'vitest';
import { connectMysql, type MysqlBackendSocket } from '../../src/backend/mysql/connect.js';
import { Com, framePacket } from '../../src/protocol/mysql/index.js';
import { proxyChildForSuite, rssOf } from '../support/proxy-child.js';

/**
 * Issue 10, item 2 (MySQL): a client that reads a ~1GB result slowly must not
 * make the proxy buffer it. The proxy runs in a child process (the CLI from the
 * sources via tsx) so that its RSS is its own; the client is our codec (logged
 * in through the proxy), whose socket the test pauses and resumes by hand.
 */
const info = inject('mariaCluster');
const app = info.users.app;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const proxy = proxyChildForSuite({ protocol: 'mysql', nodes: info.nodes, user: app, dirPrefix: 'switchyard-my-rss-' });

/** Sends COM_QUERY and counts the answer's bytes until its final EOF, reading only while `reading()` says so. */
function streamQuery(c: MysqlBackendSocket, sql: string) {
  const socket = c.socket;
  socket.removeAllListeners('data');
  socket.pause();
  let received = 0;
  // The last 9 bytes seen: a text resultset (no DEPRECATE_EOF) ends with the EOF packet
  // 05 00 00 <seq> fe <warnings:2> <status:2>; rows of 'x' never end like that.
  let tail = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    received += d.length;
    tail = Buffer.concat([tail, d.subarray(-9)]).subarray(-9);
  });
  socket.write(framePacket(Buffer.concat([Buffer.from([Com.QUERY]), Buffer.from(sql)]), 0).bytes);
  return {
    received: () => received,
    done: () => tail.length === 9 && tail[0] === 5 && tail[1] === 0 && tail[2] === 0 && tail[4] === 0xfe,
  };
}

describe('backpressure (MySQL)', () => {
  it('a client reading a ~1GB result slowly keeps the proxy RSS bounded (proxy in a child process)', async () => {
    const rows = Number(process.env.SLOW_READER_ROWS ?? 1_000_000);
    const c = await connectMysql({ host: '127.0.0.1', port: proxy.port, user: app.user, password: app.password, database: info.database });
    // Warm-up: the same path once with a small result, so lazily built state is in the baseline.
    const warm = streamQuery(c, `SELECT seq, REPEAT('x', 1000) FROM seq_1_to_5000`);
    socketResume(c);
    const warmDeadline = Date.now() + 20_000;
    while (!warm.done() && Date.now() < warmDeadline) await sleep(20);
    expect(warm.done()).toBe(true);
    const baseline = rssOf(proxy.pid);

    const q = streamQuery(c, `SELECT seq, REPEAT('x', 1000) FROM seq_1_to_${rows}`);
    // 1. The client reads nothing for 3s: an unbounded proxy would take the whole result in.
    let peak = baseline;
    for (let i = 0; i < 12; i++) {
      await sleep(250);
      peak = Math.max(peak, rssOf(proxy.pid));
    }
    const afterStall = rssOf(proxy.pid);
    // 2. Then it reads in bursts (40ms on, 10ms off) to the end: bounded by a deadline, not a speed claim.
    const t0 = performance.now();
    const deadline = Date.now() + 240_000;
    while (!q.done() && Date.now() < deadline) {
      socketResume(c);
      await sleep(40);
      c.socket.pause();
      peak = Math.max(peak, rssOf(proxy.pid));
      await sleep(10);
    }
    const seconds = (performance.now() - t0) / 1000;
    expect(q.done()).toBe(true);
    // Every row came through: ~1,010 bytes per row packet (1,000 + seq + headers).
    expect(q.received()).toBeGreaterThan(rows * 1000);
    const mb = (b: number) => Math.round(b / 1048576);
    console.log(
      `mysql slow reader: ${mb(q.received())}MB result; proxy RSS baseline ${mb(baseline)}MB, after a 3s stall ${mb(afterStall)}MB , peak ${mb(peak)}MB (growth ${mb(peak - baseline)}MB) over ${seconds.toFixed(1)}s of bursty reading`,
    );
    expect(peak - baseline).toBeLessThan(200 * 1048576);
    c.socket.destroy();
  }, 300_000);
});

function socketResume(c: MysqlBackendSocket): void {
  c.socket.resume();
}
