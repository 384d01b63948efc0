/**
 * Long fuzzing run of both frontends (issue 10, item 1):
 * `npx tsx bench/fuzz.ts --inputs 1000000 [--protocol pg|mysql|both] [--seed 1] [--max-minutes M]`
 * (also `npm run fuzz -- --inputs ...`).
 *
 * Starts local clusters (src/devcluster: PostgreSQL pg0 + 2 replicas, MariaDB my0 + 2
 * replicas), runs switchyard in this process in front of each and feeds it `--inputs`
 * generated inputs per protocol with the generators and drivers of the CI fuzz tests
 * (test/support/fuzz-pg.ts, fuzz-mysql.ts), in rounds of at most 100,000 with their own
 * seeds. PostgreSQL: 16% startup-phase packets, the rest ready-phase messages on
 * logged-in sessions; MySQL: 12% handshake-phase packets, the rest commands.
 * Checks, after every round and at the end: no input hung (the proxy closed every
 * connection at the latest after the client's half-close), no unhandled rejection or
 * uncaught exception, the proxy still answers a query, no pooled connection left
 * active and each node's own connection list (pg_stat_activity / processlist) equal
 * to the pool's idle count plus what it showed before the run.
 * `--max-minutes`: start no new round after that long per protocol (the count reached is
 * reported as it is). Writes bench/results/fuzz.json; exits 1 when an invariant failed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { MariaCluster } from '../src/devcluster/mariadb.js';
import { PgCluster } from '../src/devcluster/pg.js';
import { startProxy, type ProxyOptions, type RunningProxy } from '../test/support/proxy.js';
import { checkLeaks, describePhase, unpooled, watchUnhandled, type LeakCheck, type PhaseResult } from '../test/support/fuzz-common.js';
import { fuzzPgReady, fuzzPgStartup, pgBackendCount } from '../test/support/fuzz-pg.js';
import { fuzzMysqlCommands, fuzzMysqlHandshake, mysqlBackendCount } from '../test/support/fuzz-mysql.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
};
const INPUTS = Number(arg('inputs', '1000000'));
const PROTOCOL = arg('protocol', 'both');
const SEED = Number(arg('seed', '1'));
const MAX_MS = Number(arg('max-minutes', 'Infinity')) * 60_000;
const ROUND = 100_000;
if (!Number.isFinite(INPUTS) || INPUTS <= 0 || !['pg', 'mysql', 'both'].includes(PROTOCOL)) {
  console.error('usage: tsx bench/fuzz.ts --inputs N [--protocol pg|mysql|both] [--seed S] [--max-minutes M]');
  process.exit(2);
}

/** Per phase over all rounds: sums, plus the first hung batches. */
type Totals = Record<string, Omit<PhaseResult, 'hung'> & { hung: number; hungSamples: string[]; [k: string]: unknown }>;
function add(t: Totals, r: PhaseResult): void {
  const cur = (t[r.phase] ??= { phase: r.phase, inputs: 0, conns: 0, answered: 0, closed: 0, cut: 0, hung: 0, hungSamples: [], ms: 0 });
  for (const [k, v] of Object.entries(r as unknown as Record<string, unknown>)) if (typeof v === 'number') cur[k] = ((cur[k] as number | undefined) ?? 0) + v;
  cur.hung += r.hung.length;
  cur.hungSamples.push(...r.hung.slice(0, 5 - cur.hungSamples.length));
}

interface ProtocolResult {
  inputs: number;
  rounds: number;
  ms: number;
  inputsPerSecond: number;
  phases: Totals;
  leaks: LeakCheck[];
  servesAfter: boolean;
  failures: string[];
  stoppedEarly: boolean;
}

/**
 * Runs rounds of `round(n, seed)` until `INPUTS` (or `--max-minutes`) is reached, checking the
 * invariants after each round.
 */
async function campaign(name: string, proxy: RunningProxy, count: (node: string) => Promise<number>, serves: () => Promise<boolean>, round: (inputs: number, seed: number, index: number) => Promise<PhaseResult[]>): Promise<ProtocolResult> {
  const baseline = await unpooled(proxy.app, count);
  const res: ProtocolResult = { inputs: 0, rounds: 0, ms: 0, inputsPerSecond: 0, phases: {}, leaks: [], servesAfter: false, failures: [], stoppedEarly: false };
  const t0 = Date.now();
  while (res.inputs < INPUTS) {
    if (Date.now() - t0 > MAX_MS) {
      res.stoppedEarly = true;
      break;
    }
    const phases = await round(Math.min(ROUND, INPUTS - res.inputs), SEED * 1_000_003 + res.rounds * 10_007, res.rounds);
    res.rounds++;
    for (const p of phases) {
      add(res.phases, p);
      res.inputs += p.inputs;
      if (p.hung.length) res.failures.push(`round ${res.rounds}, ${p.phase}: ${p.hung.length} hung`);
      const bad = (p as { badAnswer?: string[] }).badAnswer;
      if (bad?.length) res.failures.push(`round ${res.rounds}, ${p.phase}: ${bad.length} wrong answers, e.g. ${bad[0]}`);
    }
    const leaks = await checkLeaks(proxy.app, count, baseline);
    res.leaks.push(leaks);
    if (leaks.active !== 0 || leaks.mismatched.length) res.failures.push(`round ${res.rounds}: ${leaks.active} active, ${leaks.mismatched.join('; ')}`);
    const el = Date.now() - t0;
    console.log(`[fuzz ${name}] round ${res.rounds}: ${res.inputs} inputs in ${(el / 1000).toFixed(1)} s (${phases.map((p) => `${p.phase}: ${describePhase(p)}`).join('; ')}); active ${leaks.active}, books ${leaks.mismatched.length ? leaks.mismatched.join('; ') : 'match'}`);
  }
  res.servesAfter = await serves().catch(() => false);
  if (!res.servesAfter) res.failures.push('the proxy no longer answers a query');
  res.ms = Date.now() - t0;
  res.inputsPerSecond = Math.round((res.inputs / res.ms) * 1000);
  if (res.inputs < INPUTS) res.failures.push(`only ${res.inputs} of ${INPUTS} inputs within --max-minutes`);
  return res;
}

/** Starts a cluster and a proxy in front of it, runs `fn`, stops both. */
async function onCluster<C extends { stopAll(): Promise<void> }>(name: string, start: () => Promise<C>, proxyOpts: (c: C) => ProxyOptions, fn: (c: C, p: RunningProxy) => Promise<ProtocolResult>): Promise<ProtocolResult> {
  const t0 = Date.now();
  const cluster = await start();
  console.log(`[fuzz ${name}] cluster up in ${Date.now() - t0} ms`);
  let proxy: RunningProxy | undefined;
  try {
    proxy = await startProxy(proxyOpts(cluster));
    return await fn(cluster, proxy);
  } finally {
    await proxy?.stop();
    await cluster.stopAll();
  }
}

const runPg = () =>
  onCluster('pg', () => PgCluster.start({ replicas: 2 }), (c) => ({
    nodes: c.info.nodes,
    user: c.info.users.app,
    topYaml: 'limits:\n  max_message_size: 1MB\n  auth_timeout: 2s\n',
    clusterYaml: '    pool:\n      size: 8\n      acquire_timeout: 2s\n',
  }), (c, p) => {
    const url = p.url(c.info.database);
    const serves = async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try { return (await client.query('SELECT 41 + 1 AS x')).rows[0].x === 42; } finally { await client.end(); }
    };
    return campaign('pg', p, pgBackendCount(c.info), serves, async (n, seed) => {
      const startup = Math.round(n * 0.16);
      return [await fuzzPgStartup({ port: p.port, inputs: startup, seed }), await fuzzPgReady({ url, inputs: n - startup, seed: seed + 1 })];
    });
  });

const runMysql = () =>
  onCluster('mysql', () => MariaCluster.start({ replicas: 2 }), (c) => ({
    protocol: 'mysql',
    nodes: c.info.nodes,
    user: c.info.users.app,
    topYaml: 'limits:\n  max_message_size: 32MB\n  auth_timeout: 60s\n',
    clusterYaml: '    pool:\n      size: 12\n      acquire_timeout: 5s\n',
  }), (c, p) => {
    const app = c.info.users.app;
    const serves = async () => {
      const client = await mysql.createConnection({ host: '127.0.0.1', port: p.port, user: app.user, password: app.password, database: 'app' });
      try { const [rows] = await client.query<mysql.RowDataPacket[]>('SELECT 41 + 1 AS x'); return Number(rows[0]!.x) === 42; } finally { await client.end(); }
    };
    return campaign('mysql', p, mysqlBackendCount(c.info), serves, async (n, seed, index) => {
      const hs = Math.round(n * 0.12);
      // The four 16MB split packets once, in the first round.
      return [await fuzzMysqlHandshake({ port: p.port, app, inputs: hs, seed }), await fuzzMysqlCommands({ port: p.port, app, inputs: n - hs, packets: 400, seed: seed + 1, splits: index === 0 })];
    });
  });

const unhandled = watchUnhandled();
const uncaught: string[] = [];
process.on('uncaughtException', (e) => { uncaught.push(String(e?.stack ?? e)); console.error('uncaught exception:', e); });
// An emptied event loop (exit code 13: the top-level await never settled) or a signal must not pass silently.
process.on('exit', (code) => { if (code !== 0 && code !== 1) console.error(`[fuzz] exiting with code ${code} before the end of the run`); });
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.once(sig, () => { console.error(`[fuzz] ${sig}`); process.exit(128); });
const started = Date.now();
const results: Record<string, ProtocolResult> = {};
if (PROTOCOL !== 'mysql') results.pg = await runPg();
if (PROTOCOL !== 'pg') results.mysql = await runMysql();
unhandled.stop();

const out = {
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadavg: os.loadavg() },
  command: `tsx bench/fuzz.ts ${process.argv.slice(2).join(' ')}`,
  inputsRequestedPerProtocol: INPUTS,
  seconds: Math.round((Date.now() - started) / 1000),
  unhandledRejections: unhandled.errors.map(String),
  uncaughtExceptions: uncaught,
  protocols: results,
};
const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'fuzz.json'), JSON.stringify(out, null, 2) + '\n');
const failed = Object.entries(results).flatMap(([k, r]) => r.failures.map((f) => `${k}: ${f}`)).concat(out.unhandledRejections.map((e) => `unhandled rejection: ${e}`), uncaught.map((e) => `uncaught exception: ${e}`));
for (const [k, r] of Object.entries(results)) console.log(`[fuzz ${k}] ${r.inputs} inputs in ${(r.ms / 1000).toFixed(1)} s (${r.inputsPerSecond}/s), ${r.rounds} rounds`);
console.log(failed.length ? `FAILED:\n  ${failed.join('\n  ')}` : `all invariants held; ${out.seconds} s in all; bench/results/fuzz.json written`);
process.exit(failed.length ? 1 : 0);
