/**
 * What read-your-writes (routing.consistency: causal) costs per write:
 * `npx tsx bench/causal.ts [--writes 3000] [--rounds 3]`.
 *
 * 1. In process: the tracker's work for one write (begin + settle) and for the read after it
 *    (required), in ns, over 1,000,000 iterations.
 * 2. End to end: a local PostgreSQL primary + 2 replicas, two proxies in this process (one
 *    causal, one eventual), autocommit INSERTs through each, rounds alternating A B A B so
 *    drift on a shared machine hits both; mean and p99 latency per write. The writes are the
 *    same; only the tracking differs.
 * 3. What it costs the replicas: the share of reads that run on the primary when each read
 *    follows its own write (insert, then select by id), causal vs eventual.
 * Writes bench/results/causal.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pino } from 'pino';
import { App } from '../src/app.js';
import { PgCluster } from '../src/devcluster/pg.js';
import { freePort } from '../src/devcluster/proc.js';
import { CausalTracker } from '../src/frontend/causal.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const WRITES = arg('writes', 3000);
const ROUNDS = arg('rounds', 3);

function trackerCost(): { write_ns: number; read_ns: number } {
  let t = 0;
  const tracker = new CausalTracker(() => ++t);
  const view = { primary: 'p', sampledAt: 0, nodes: [{ name: 'p', replayPosition: 100n }] };
  const n = 1_000_000;
  // Warm up, then time each half separately.
  for (let i = 0; i < 100_000; i++) {
    tracker.begin(true);
    tracker.settle();
    view.sampledAt = t + 1;
    tracker.required(view);
  }
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    tracker.begin(true);
    tracker.settle();
  }
  const write = Number(process.hrtime.bigint() - t0) / n;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    view.sampledAt = t + 1;
    tracker.required(view);
  }
  const read = Number(process.hrtime.bigint() - t0) / n;
  return { write_ns: Math.round(write * 10) / 10, read_ns: Math.round(read * 10) / 10 };
}

async function startProxy(cluster: PgCluster, consistency: 'causal' | 'eventual'): Promise<{ app: App; url: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-causal-'));
  const port = await freePort();
  const admin = await freePort();
  const nodes = cluster.info.nodes.map((n) => `      - { name: ${n.name}, host: ${n.host}, port: ${n.port} }`).join('\n');
  const app = cluster.info.users.app;
  writeFileSync(
    join(dir, 'switchyard.yaml'),
    `admin:\n  listen: 127.0.0.1:${admin}\nlog:\n  level: warn\nclusters:\n  - name: main\n    protocol: postgres\n    listen: 127.0.0.1:${port}\n    nodes:\n${nodes}\n    users:\n      - { name: ${app.user}, password: "${app.password}" }\n    routing:\n      consistency: ${consistency}\n      max_replica_lag: { bytes: 1GB, time: 1h }\n`,
  );
  const proxy = new App({ configPath: join(dir, 'switchyard.yaml'), env: {}, logger: pino({ level: 'warn' }) });
  await proxy.start();
  for (let i = 0; i < 300 && !proxy.status().clusters[0]!.primary; i++) await new Promise((r) => setTimeout(r, 50));
  return {
    app: proxy,
    url: `postgresql://${app.user}:${app.password}@127.0.0.1:${port}/${cluster.info.database}`,
    stop: async () => {
      await proxy.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function writeRound(url: string, base: number): Promise<number[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const lat: number[] = [];
  for (let i = 0; i < WRITES; i++) {
    const t0 = performance.now();
    await c.query('INSERT INTO causal_bench (id) VALUES ($1)', [base + i]);
    lat.push(performance.now() - t0);
  }
  await c.end();
  return lat;
}

async function readAfterWriteShare(url: string, base: number, n: number): Promise<{ on_primary: number; reads: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  let onPrimary = 0;
  const primaryPort = (await c.query<{ p: number }>('WITH w AS (INSERT INTO causal_bench (id) VALUES ($1) RETURNING 1) SELECT inet_server_port() AS p FROM w', [base - 1])).rows[0]!.p;
  for (let i = 0; i < n; i++) {
    await c.query('INSERT INTO causal_bench (id) VALUES ($1)', [base + i]);
    const r = await c.query<{ p: number }>('SELECT inet_server_port() AS p FROM causal_bench WHERE id = $1', [base + i]);
    if (r.rows[0]?.p === primaryPort) onPrimary++;
  }
  await c.end();
  return { on_primary: onPrimary, reads: n };
}

const summary = (lat: number[]) => {
  const s = [...lat].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { mean_us: Math.round(mean * 1000), p99_us: Math.round(s[Math.floor(s.length * 0.99)]! * 1000) };
};

async function main(): Promise<void> {
  const tracker = trackerCost();
  console.log(`tracker: ${tracker.write_ns} ns per write (begin + settle), ${tracker.read_ns} ns per read after it (required)`);
  const cluster = await PgCluster.start({ replicas: 2 });
  try {
    const pg0 = cluster.node('pg0');
    const c = new pg.Client({ host: pg0.host, port: pg0.port, user: cluster.info.users.app.user, password: cluster.info.users.app.password, database: cluster.info.database });
    await c.connect();
    await c.query('CREATE TABLE causal_bench (id bigint primary key)');
    await c.end();
    const causal = await startProxy(cluster, 'causal');
    const eventual = await startProxy(cluster, 'eventual');
    const lat: Record<'causal' | 'eventual', number[]> = { causal: [], eventual: [] };
    const rounds: { system: string; mean_us: number; p99_us: number }[] = [];
    let base = 1;
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, p] of [['causal', causal], ['eventual', eventual]] as const) {
        const l = await writeRound(p.url, base);
        base += WRITES;
        lat[name].push(...l);
        rounds.push({ system: name, ...summary(l) });
        console.log(`round ${r + 1} ${name}: ${JSON.stringify(summary(l))}`);
      }
    }
    const share = {
      causal: await readAfterWriteShare(causal.url, 10_000_000, 1000),
      eventual: await readAfterWriteShare(eventual.url, 20_000_000, 1000),
    };
    await causal.stop();
    await eventual.stop();
    const result = {
      at: new Date().toISOString(),
      writes_per_round: WRITES,
      rounds: ROUNDS,
      tracker,
      write_latency: { causal: summary(lat.causal), eventual: summary(lat.eventual), per_round: rounds },
      read_after_own_write_on_primary: share,
    };
    console.log(JSON.stringify(result, null, 2));
    const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'causal.json');
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  } finally {
    await cluster.stopAll();
  }
}

await main();
