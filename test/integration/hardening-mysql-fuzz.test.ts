import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import mysql from 'mysql2/promise';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { checkLeaks, describePhase, unpooled, watchUnhandled } from '../support/fuzz-common.js';
import { fuzzMysqlCommands, fuzzMysqlHandshake, mysqlBackendCount } from '../support/fuzz-mysql.js';

/**
 * Frame-aware fuzzing of the MySQL frontend (issue 10, item 1) over real sockets
 * against an in-process proxy in front of the MariaDB test cluster (generators and
 * drivers: test/support/fuzz-mysql.ts, shared with bench/fuzz.ts). Each input
 * must end in an ERR packet and a close, or a correct answer: never a crash, an
 * unhandled rejection, a hang (after the client half-closes, the proxy must close
 * within 3 s) or a leaked backend connection (pool back to 0 active at the end, and
 * each node's processlist equal to the pool's idle count).
 * 20 well-behaved mysql2 sessions run throughout and must see no error.
 * auth_timeout is 60 s, so a close in the handshake phase comes from the input
 * or the half-close, never from the timer. Counts are printed for docs/security.md.
 */
const info = inject('mariaCluster');
const app = info.users.app;
const count = mysqlBackendCount(info);
let proxy: RunningProxy;
let baseline: Record<string, number>;
const unhandled = watchUnhandled();

// Inputs per CI run (the issue asks for at least 100,000); env knobs for longer runs.
const knobs = {
  handshakeInputs: Number(process.env.FUZZ_MY_HS_INPUTS ?? 12_000),
  commandInputs: Number(process.env.FUZZ_MY_COMMAND_INPUTS ?? 90_000),
  packetsPerSession: Number(process.env.FUZZ_MY_PACKETS ?? 400),
};
let total = 0;

beforeAll(async () => {
  proxy = await startProxy({
    protocol: 'mysql',
    nodes: info.nodes,
    user: app,
    // 32MB: room for one split (0xffffff) packet, so that wrong continuations reach the sequence check.
    topYaml: 'limits:\n  max_message_size: 32MB\n  auth_timeout: 60s\n',
    clusterYaml: '    pool:\n      size: 12\n      acquire_timeout: 5s\n',
  });
});

afterAll(async () => {
  unhandled.stop();
  await proxy?.stop();
});

// 20 well-behaved sessions run while the fuzzing goes on (bounded: at most 100,000 queries each).
let stopGood = false;
let goodQueries = 0;
const goodErrors: unknown[] = [];
let goodRuns: Promise<void>[] = [];

describe('fuzzing the MySQL frontend', () => {
  it('20 well-behaved sessions start', async () => {
    // Before the good sessions: what each node shows beyond the pools (the monitoring connections).
    baseline = await unpooled(proxy.app, count);
    const goods = await Promise.all(Array.from({ length: 20 }, () => mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: app.user, password: app.password, database: 'app' })));
    goodRuns = goods.map(async (c, k) => {
      try {
        for (let i = 0; i < 100_000 && !stopGood; i++) {
          const [rows] = await c.execute<mysql.RowDataPacket[]>('SELECT ? AS k, ? AS i', [k, i]);
          if (rows[0]!.k !== k || rows[0]!.i !== i) throw new Error(`wrong answer ${JSON.stringify(rows[0])}`);
          goodQueries++;
          await new Promise((r) => setTimeout(r, 5));
        }
      } catch (e) {
        goodErrors.push(e);
      } finally {
        await c.end().catch(() => undefined);
      }
    });
  });

  it('handshake phase: HandshakeResponse41 with wrong fields and lengths, SSLRequests, truncated and concatenated packets, random bytes', async () => {
    const r = await fuzzMysqlHandshake({ port: proxy.port, app, inputs: knobs.handshakeInputs });
    total += r.inputs;
    console.log(`fuzz mysql handshake: ${describePhase(r)}; ${r.err} ended with an ERR`);
    expect(r.hung).toEqual([]);
    expect(r.badAnswer).toEqual([]);
    expect(r.err).toBeGreaterThan(r.conns / 2);
  }, 60_000);

  it('command phase: batches of malformed commands on logged-in sessions end in a correct answer or an ERR and a close', async () => {
    const r = await fuzzMysqlCommands({ port: proxy.port, app, inputs: knobs.commandInputs, packets: knobs.packetsPerSession, debug: !!process.env.FUZZ_DEBUG });
    total += r.inputs;
    console.log(`fuzz mysql commands: ${describePhase(r)}; ${r.framedAnswered} of ${r.framedSessions} well-framed sessions answered, ${r.splitConns} with a split packet`);
    if (r.hung.length) console.log('hung sessions (hex of the batch):', r.hung);
    expect(r.hung).toEqual([]);
    expect(r.splitConns).toBe(4);
    // Well-framed batches (wrong statement ids, parameter counts, null bitmaps, sequence ids) must
    // be worked through to the final answer in most sessions (some stall until the half-close: see docs/security.md).
    expect(r.framedAnswered).toBeGreaterThan(r.framedSessions / 4);
  }, 120_000);

  it('afterwards: the good sessions saw no error, the proxy serves, no backend connection is left active or unaccounted for, no unhandled rejection', async () => {
    stopGood = true;
    await Promise.all(goodRuns);
    expect(goodErrors).toEqual([]);
    expect(goodQueries).toBeGreaterThan(100);
    const c = await mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: app.user, password: app.password, database: 'app' });
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT 41 + 1 AS x');
    expect(Number(rows[0]!.x)).toBe(42);
    await c.end();
    const leaks = await checkLeaks(proxy.app, count, baseline);
    expect(leaks.active).toBe(0);
    expect(leaks.mismatched).toEqual([]);
    expect(unhandled.errors).toEqual([]);
    console.log(`fuzz mysql total: ${total} inputs; 20 good sessions ran ${goodQueries} queries without an error`);
    // The issue asks for at least 100,000 inputs per CI run (fewer only when the env asks for it).
    if (!process.env.FUZZ_MY_HS_INPUTS && !process.env.FUZZ_MY_COMMAND_INPUTS) expect(total).toBeGreaterThanOrEqual(100_000);
  });
});
