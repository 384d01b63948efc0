import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { activeNow, checkLeaks, describePhase, unpooled, watchUnhandled } from '../support/fuzz-common.js';
import { fuzzPgReady, fuzzPgStartup, pgBackendCount } from '../support/fuzz-pg.js';

/**
 * Frame-aware fuzzing of the PostgreSQL frontend over real sockets against an
 * in-process proxy (generators and drivers: test/support/fuzz-pg.ts, shared with
 * bench/fuzz.ts). Each input must end in a protocol error and a closed
 * connection, or a correct answer: never a crash, an unhandled rejection, a
 * hang or a leaked backend connection (pool back to 0 active at the end, and the
 * nodes' pg_stat_activity equal to the pools' idle counts).
 * Counts are printed so the figures in docs/security.md can be re-measured.
 */
const info = inject('pgCluster');
const count = pgBackendCount(info);
let proxy: RunningProxy;
let baseline: Record<string, number>;
const unhandled = watchUnhandled();

// Inputs per CI run (the issue asks for at least 100,000); env knobs for longer runs.
const STARTUP_INPUTS = Number(process.env.FUZZ_PG_STARTUP_INPUTS ?? 17_000);
const READY_INPUTS = Number(process.env.FUZZ_PG_READY_INPUTS ?? 90_000);
const FRAMES = Number(process.env.FUZZ_PG_FRAMES ?? 250);
let total = 0;

beforeAll(async () => {
  proxy = await startProxy({
    nodes: info.nodes,
    user: info.users.app,
    topYaml: 'limits:\n  max_message_size: 1MB\n  auth_timeout: 2s\n',
    clusterYaml: '    pool:\n      size: 8\n      acquire_timeout: 2s\n',
  });
  baseline = await unpooled(proxy.app, count);
});

afterAll(async () => {
  unhandled.stop();
  await proxy?.stop();
});

describe('fuzzing the PostgreSQL frontend', () => {
  it('startup phase: random startup/SSL/cancel/password packets, truncated and concatenated, never hang or crash', async () => {
    const r = await fuzzPgStartup({ port: proxy.port, inputs: STARTUP_INPUTS });
    total += r.inputs;
    console.log(`fuzz pg startup: ${describePhase(r)}`);
    expect(r.hung).toEqual([]);
  }, 120_000);

  it('ready phase: batches of malformed messages on logged-in sessions end in a correct answer or a FATAL and a close', async () => {
    const debug = !!process.env.FUZZ_DEBUG;
    const r = await fuzzPgReady({
      url: proxy.url(info.database),
      inputs: READY_INPUTS,
      frames: FRAMES,
      width: debug ? 1 : 16,
      afterSession: debug
        ? async (outcome, frames) => {
            await new Promise((res) => setTimeout(res, 100));
            if (activeNow(proxy.app) > 0) throw new Error(`leak after ${outcome}: ${frames.map((f) => f.toString('hex')).join(' ')}`);
          }
        : undefined,
    });
    total += r.inputs;
    console.log(`fuzz pg ready: ${describePhase(r)}; ${r.framedAnswered} of ${r.framedSessions} well-framed sessions answered`);
    if (r.hung.length) console.log('hung sessions (hex of the batch):', r.hung);
    expect(r.hung).toEqual([]);
    // Well-framed batches (some still carry malformed fields, e.g. a Describe of kind 'A')
    // must sometimes be worked through to the final answer.
    expect(r.framedAnswered).toBeGreaterThan(0);
  }, 180_000);

  it('afterwards: the proxy serves, no backend connection is left active or unaccounted for, no unhandled rejection', async () => {
    const c = new pg.Client({ connectionString: proxy.url(info.database) });
    await c.connect();
    expect((await c.query('SELECT 41 + 1 AS x')).rows[0].x).toBe(42);
    await c.end();
    const leaks = await checkLeaks(proxy.app, count, baseline);
    expect(leaks.active).toBe(0);
    expect(leaks.mismatched).toEqual([]);
    expect(unhandled.errors).toEqual([]);
    console.log(`fuzz pg total: ${total} inputs`);
    // The issue asks for at least 100,000 inputs per CI run (fewer only when the env asks for it).
    if (!process.env.FUZZ_PG_STARTUP_INPUTS && !process.env.FUZZ_PG_READY_INPUTS) expect(total).toBeGreaterThanOrEqual(100_000);
  });
});
