/**
 * Does a failed login tell an unknown user from a wrong password? (issue 10, item 3:
 * "wrong passwords and unknown users give the same error after the same work").
 * `npx tsx bench/auth-timing.ts [--rounds 300]` (also `npm run bench:auth`).
 *
 * Starts local clusters (src/devcluster: PostgreSQL and MariaDB, one replica each),
 * runs switchyard in this process in front of each and, per protocol, times `--rounds`
 * failed logins of each kind with the protocol's usual driver (pg: SCRAM-SHA-256;
 * mysql2: mysql_native_password, the plugin the proxy's handshake offers):
 *   - wrong: the configured user with a wrong password;
 *   - unknown: a user name never seen before (a fresh name each time, as an attacker
 *     probing for names would use: nothing about it can be cached).
 * The kinds alternate (A B A B ...) and each failure follows a successful login, which
 * resets the per-address failure delay (so every failure is a first one, answered at
 * once, and the delay does not mask a difference). Per kind: median, p10, p90, mean of
 * the time from connect() to the error, and the error each got (SQLSTATE / errno and
 * the message with the user name masked) — which must be identical.
 * Writes bench/results/auth-timing.json. A difference of medians well inside the
 * spread (p90 - p10) is what "same work" looks like from the outside; the JSON keeps
 * every sample for other tests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { MariaCluster } from '../src/devcluster/mariadb.js';
import { PgCluster } from '../src/devcluster/pg.js';
import { startProxy, type RunningProxy } from '../test/support/proxy.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
};
const ROUNDS = Number(arg('rounds', '300'));
if (!Number.isInteger(ROUNDS) || ROUNDS < 10) {
  console.error('usage: tsx bench/auth-timing.ts [--rounds N >= 10]');
  process.exit(2);
}

type Kind = 'wrong' | 'unknown';
interface Attempt { ms: number; error: string }
interface KindStats { n: number; medianMs: number; p10Ms: number; p90Ms: number; meanMs: number; errors: string[]; samplesMs: number[] }

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

function stats(attempts: Attempt[]): KindStats {
  const ms = attempts.map((a) => a.ms);
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    n: ms.length,
    medianMs: round3(quantile(sorted, 0.5)),
    p10Ms: round3(quantile(sorted, 0.1)),
    p90Ms: round3(quantile(sorted, 0.9)),
    meanMs: round3(ms.reduce((a, b) => a + b, 0) / ms.length),
    errors: [...new Set(attempts.map((a) => a.error))],
    samplesMs: ms.map(round3),
  };
}

/** Runs `rounds` failures of each kind, alternating, each after a successful login. */
async function campaign(fail: (kind: Kind, i: number) => Promise<Attempt>, succeed: () => Promise<void>): Promise<Record<Kind, KindStats>> {
  const out: Record<Kind, Attempt[]> = { wrong: [], unknown: [] };
  // Warm-up: both paths once (lazy module state, the key caches of the known user).
  await succeed();
  await fail('wrong', -1);
  await succeed();
  await fail('unknown', -1);
  for (let i = 0; i < ROUNDS; i++) {
    for (const kind of (i % 2 === 0 ? ['wrong', 'unknown'] : ['unknown', 'wrong']) as Kind[]) {
      await succeed();
      out[kind].push(await fail(kind, i));
    }
  }
  return { wrong: stats(out.wrong), unknown: stats(out.unknown) };
}

async function timed(fn: () => Promise<unknown>, describe: (e: unknown) => string): Promise<Attempt> {
  const t0 = performance.now();
  try {
    await fn();
  } catch (e) {
    return { ms: performance.now() - t0, error: describe(e) };
  }
  throw new Error('a login that should fail succeeded');
}

async function runPg(): Promise<Record<Kind, KindStats>> {
  const cluster = await PgCluster.start({ replicas: 1 });
  let proxy: RunningProxy | undefined;
  try {
    proxy = await startProxy({ nodes: cluster.info.nodes, user: cluster.info.users.app });
    const app = cluster.info.users.app;
    const base = { host: '127.0.0.1', port: proxy.port, database: cluster.info.database };
    const connect = async (user: string, password: string) => {
      const c = new pg.Client({ ...base, user, password });
      try {
        await c.connect();
      } finally {
        await c.end().catch(() => undefined);
      }
    };
    return await campaign(
      (kind, i) =>
        timed(
          () => (kind === 'wrong' ? connect(app.user, `wrong-${i}`) : connect(`ghost_${i}_${Math.random().toString(36).slice(2)}`, app.password)),
          (e) => `${(e as { code?: string }).code} ${String((e as Error).message).replace(/"[^"]*"/, '"<user>"')}`,
        ),
      () => connect(app.user, app.password),
    );
  } finally {
    await proxy?.stop();
    await cluster.stopAll();
  }
}

async function runMysql(): Promise<Record<Kind, KindStats>> {
  const cluster = await MariaCluster.start({ replicas: 1 });
  let proxy: RunningProxy | undefined;
  try {
    proxy = await startProxy({ protocol: 'mysql', nodes: cluster.info.nodes, user: cluster.info.users.app });
    const app = cluster.info.users.app;
    const connect = async (user: string, password: string) => {
      const c = await mysql.createConnection({
        host: '127.0.0.1', port: proxy!.port, user, password, database: 'app',
      });
      await c.end();
    };
    return await campaign(
      (kind, i) =>
        timed(
          () => (kind === 'wrong' ? connect(app.user, `wrong-${i}`) : connect(`ghost_${i}_${Math.random().toString(36).slice(2, 8)}`, app.password)),
          (e) => `${(e as { errno?: number }).errno} ${String((e as Error).message).replace(/'[^']*'@/, "'<user>'@")}`,
        ),
      () => connect(app.user, app.password),
    );
  } finally {
    await proxy?.stop();
    await cluster.stopAll();
  }
}

const t0 = Date.now();
const pgResult = await runPg();
const mysqlResult = await runMysql();
const result = {
  bench: 'auth-timing',
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
  rounds: ROUNDS,
  seconds: Math.round((Date.now() - t0) / 1000),
  postgres: pgResult,
  mysql: mysqlResult,
};
const here = dirname(fileURLToPath(import.meta.url));
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'auth-timing.json'), JSON.stringify(result, null, 1) + '\n');
let same = true;
for (const [proto, r] of [['postgres', pgResult], ['mysql', mysqlResult]] as const) {
  const spread = r.wrong.p90Ms - r.wrong.p10Ms;
  console.log(
    `${proto}: wrong password median ${r.wrong.medianMs} ms (p10 ${r.wrong.p10Ms}, p90 ${r.wrong.p90Ms}), unknown user median ${r.unknown.medianMs} ms ` +
      `(p10 ${r.unknown.p10Ms}, p90 ${r.unknown.p90Ms}); difference of medians ${round3(r.unknown.medianMs - r.wrong.medianMs)} ms against a spread of ${round3(spread)} ms`,
  );
  console.log(`  errors: wrong ${JSON.stringify(r.wrong.errors)}, unknown ${JSON.stringify(r.unknown.errors)}`);
  if (JSON.stringify(r.wrong.errors) !== JSON.stringify(r.unknown.errors)) same = false;
}
console.log('wrote bench/results/auth-timing.json');
// The errors must be the same; the timing is reported, not judged (a shared machine drifts).
process.exit(same ? 0 : 1);
