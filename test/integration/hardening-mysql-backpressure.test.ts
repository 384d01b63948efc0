import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectMysql, type MysqlBackendSocket } from '../../src/backend/mysql/connect.js';
import { Com, framePacket } from '../../src/protocol/mysql/index.js';
import { freeTcpPort } from '../support/proxy.js';

/**
 * Issue 10, item 2 (MySQL): a client that reads a ~1GB result slowly must not
 * make the proxy buffer it. The proxy runs in a child process (the CLI from the
 * sources via tsx) so that its RSS is its own; the client is our codec (logged
 * in through the proxy), whose socket the test pauses and resumes by hand.
 */
const info = inject('mariaCluster');
const app = info.users.app;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** VmRSS of a process, in bytes. */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

let child: ChildProcess | null = null;
let dir = '';
let port = 0;
let pid = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-my-rss-'));
  port = await freeTcpPort();
  const adminPort = await freeTcpPort();
  const configPath = join(dir, 'switchyard.yaml');
  const nodes = info.nodes.map((n) => `      - { name: ${n.name}, host: ${n.host}, port: ${n.port} }`).join('\n');
  writeFileSync(
    configPath,
    `admin:\n  listen: 127.0.0.1:${adminPort}\nlog:\n  level: warn\nclusters:\n  - name: main\n    protocol: mysql\n    listen: 127.0.0.1:${port}\n    nodes:\n${nodes}\n    users:\n      - { name: ${app.user}, password: "${app.password}" }\n    health:\n      interval: 250ms\n`,
  );
  child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', '-c', configPath, '--no-watch'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if ((await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => null))?.status === 200) break;
    await sleep(100);
  }
  if ((await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => null))?.status !== 200) throw new Error(`proxy child not ready: ${stderr}`);
  pid = child.pid!;
}, 40_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

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
    const c = await connectMysql({ host: '127.0.0.1', port, user: app.user, password: app.password, database: info.database });
    // Warm-up: the same path once with a small result, so lazily built state is in the baseline.
    const warm = streamQuery(c, `SELECT seq, REPEAT('x', 1000) FROM seq_1_to_5000`);
    socketResume(c);
    const warmDeadline = Date.now() + 20_000;
    while (!warm.done() && Date.now() < warmDeadline) await sleep(20);
    expect(warm.done()).toBe(true);
    const baseline = rssOf(pid);

    const q = streamQuery(c, `SELECT seq, REPEAT('x', 1000) FROM seq_1_to_${rows}`);
    // 1. The client reads nothing for 3s: an unbounded proxy would take the whole result in.
    let peak = baseline;
    for (let i = 0; i < 12; i++) {
      await sleep(250);
      peak = Math.max(peak, rssOf(pid));
    }
    const afterStall = rssOf(pid);
    // 2. Then it reads in bursts (40ms on, 10ms off) to the end: bounded by a deadline, not a speed claim.
    const t0 = performance.now();
    const deadline = Date.now() + 240_000;
    while (!q.done() && Date.now() < deadline) {
      socketResume(c);
      await sleep(40);
      c.socket.pause();
      peak = Math.max(peak, rssOf(pid));
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
