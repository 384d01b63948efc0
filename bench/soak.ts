/**
 * Soak (issue 10, item 5): switchyard as its own process (`node dist/cli.js start -c FILE`) in front
 * of a PostgreSQL and a MariaDB cluster (primary + 2 replicas each), under a steady mixed load on
 * both protocols, with a config reload every 10s (POST /reload with the admin token, alternating
 * the replica weights) and a replica restart every minute (alternating PostgreSQL and MariaDB,
 * replica 1 and 2). At the end:
 *
 *   - the proxy's RSS is within 10% of its value after warm-up (median of 5 one-second samples at
 *     each point, both under the same load);
 *   - its open file descriptors (/proc/<pid>/fd) did not grow (small tolerance: backend pools size
 *     themselves to the concurrency they see);
 *   - 0 unhandled errors: the proxy is alive, and neither its log nor its stderr has an
 *     uncaughtException, unhandledRejection, fatal line or a Node crash/warning;
 *   - every acknowledged write is on the primary (acked ids recorded, rows counted at the end);
 *   - clients saw errors only while a replica was being restarted (counts reported).
 *
 *   npx tsx bench/soak.ts [--duration 10m] [--warmup 60s] [--sessions 4] [--name soak]
 *   npm run soak -- --duration 3m
 *
 * Needs `npm run build` (dist/cli.js). Writes bench/results/<name>.json (default soak.json).
 * test/integration/soak.test.ts runs the 2-minute version on private clusters.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import pg from 'pg';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const TOKEN = 'soak-token';

// ---------------------------------------------------------------- types

/** What the soak needs of a cluster: the dev clusters (src/devcluster) and the tests' controllers both fit. */
export interface SoakCluster {
  info: {
    nodes: { name: string; host: string; port: number; role: 'primary' | 'replica' }[];
    users: { app: { user: string; password: string } };
    database: string;
  };
  stop(node: string): Promise<void>;
  start(node: string): Promise<void>;
  waitForReplication(timeoutMs?: number): Promise<void>;
}

export interface SoakOptions {
  /** Seconds of load in total (warm-up included). */
  durationS: number;
  /** Seconds of load before the baseline RSS / fd count is taken. Default: duration/5 within 20..120 (10m: 2m). */
  warmupS?: number;
  /** Concurrent client sessions per protocol (2 readers, 1 writer, 1 mixed, then readers). Default 4. */
  sessions?: number;
  /** Seconds between reloads. Default 10. */
  reloadEveryS?: number;
  /** Seconds between replica restarts (the first at warm-up + 20s). Default 60. */
  restartEveryS?: number;
  /** Seconds a restarted replica stays down. Default 3. */
  downS?: number;
  /** Pause between a session's statements, ms (keeps a shared 2-core machine usable). Default 2. */
  pauseMs?: number;
  /** Allowed RSS growth from warm-up to the end, fraction. Default 0.10. */
  rssTolerance?: number;
  /** Allowed fd growth from warm-up to the end, count. Default 6. */
  fdTolerance?: number;
  /** Bring your own clusters (they are restarted, so never shared ones); otherwise started and stopped here. */
  pg?: SoakCluster;
  maria?: SoakCluster;
  /** Extra arguments for the proxy's node process (e.g. --max-semi-space-size=8). */
  nodeArgs?: string[];
  /**
   * Run the proxy with --trace-gc (default true; it only prints a line per GC on stdout, the log is
   * on stderr) to record every full collection: the RSS baseline is taken after the second one
   * after warm-up, and the live heap after full collections must not grow (see docs/testing.md#soak).
   */
  traceGc?: boolean;
  log?: (line: string) => void;
}

type Proto = 'postgres' | 'mysql';

interface ClientError {
  proto: Proto;
  session: string;
  kind: 'read' | 'write' | 'tx' | 'connect';
  /** Seconds since the start of the load. */
  t: number;
  code?: string;
  message: string;
  /** The error fell inside a replica restart window (stop - 1s .. proxy sees it up + 5s). */
  inRestartWindow?: boolean;
}

export interface ProtoResult {
  reads: number;
  writes: number;
  transactions: number;
  readErrors: number;
  writeErrors: number;
  txErrors: number;
  connectErrors: number;
  /** Client connections that broke (error/end events) and were reopened. */
  sessionLosses: number;
  acked: number;
  rowsOnPrimary: number;
  /** Acknowledged ids not found on the primary. */
  missing: number[];
  /** Rows on the primary whose write was not acknowledged (failed in flight but committed). */
  unackedPresent: number;
}

export interface Sample {
  t: number;
  rssKb: number;
  fds: number;
  /** Every 5th sample: the proxy's V8 heap (used / total) and external memory, kB, from its /metrics. */
  heapUsedKb?: number;
  heapTotalKb?: number;
  externalKb?: number;
}

async function heapOf(adminPort: number): Promise<Pick<Sample, 'heapUsedKb' | 'heapTotalKb' | 'externalKb'>> {
  const m = (await admin(adminPort, 'GET', '/metrics')).body;
  const get = (name: string) => {
    const x = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(m);
    return x ? Math.round(Number(x[1]) / 1024) : undefined;
  };
  return { heapUsedKb: get('nodejs_heap_size_used_bytes'), heapTotalKb: get('nodejs_heap_size_total_bytes'), externalKb: get('nodejs_external_memory_bytes') };
}

export interface SoakResult {
  startedAt: string;
  durationS: number;
  warmupS: number;
  sessionsPerProtocol: number;
  nodeArgs: string[];
  proxy: {
    pid: number;
    /** Median RSS over 5s from the end of the warm-up. */
    rssWarmupKb: number;
    /** Median RSS over 3s just after V8's second (else first) full collection after the warm-up (null: none in time). */
    rssAfterFirstGcKb: number | null;
    firstGcT: number | null;
    /** What the end RSS is compared with: the highest RSS in the minute after the baseline point (rssAfterFirstGcKb, else rssWarmupKb). */
    rssBaselineKb: number;
    /** End RSS vs the baseline point itself (the method before 2026-12-04). */
    rssGrowthFromBaselinePointPct: number;
    rssGrowthFromWarmupPct: number;
    /** Heap used after the full collections under load (first, last, max), from --trace-gc. */
    liveHeapAfterFullGc: { firstMb: number; lastMb: number; maxMb: number; collections: number } | null;
    rssEndKb: number;
    /** End RSS vs rssBaselineKb. */
    rssGrowthPct: number;
    rssPeakKb: number;
    fdsWarmup: number;
    fdsEnd: number;
    fdGrowth: number;
    alive: boolean;
    exitCode: number | null;
    /** Pool connections per node (active+idle) as /status showed them at warm-up and at the end. */
    poolsWarmup: Record<string, number>;
    poolsEnd: Record<string, number>;
  };
  reloads: { ok: number; failed: number; maxMs: number; problems: string[] };
  restarts: { node: string; proto: Proto; tStop: number; tStarted: number; tProxySawUp: number | null }[];
  protocols: Record<Proto, ProtoResult>;
  clientErrors: { total: number; inRestartWindows: number; outsideRestartWindows: number; first: ClientError[] };
  unhandled: { count: number; lines: string[] };
  /** error-level log lines of the proxy (expected around restarts), counted by message. */
  proxyErrorLogs: Record<string, number>;
  /** warn-level lines, counted by message (node down/up, backend connection lost, ...). */
  proxyWarnLogs: Record<string, number>;
  /** With --node-arg --trace-gc: every Mark-Compact of the proxy (seconds since its start; heap used before and after, heap size after). */
  majorGcs: { t: number; uptimeS: number; usedBeforeMb: number; usedAfterMb: number; heapAfterMb: number }[];
  samples: Sample[];
  failures: string[];
  ok: boolean;
}

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
  if (!m) throw new Error(`bad duration ${s} (e.g. 90s, 10m)`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : m[2] === 'h' ? n * 3600 : n;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}
function hwmKb(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}
function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

/** One admin HTTP request on a fresh connection that is closed after it (no keep-alive socket left in the proxy's fds). */
function admin(port: number, method: 'GET' | 'POST', path: string, timeoutMs = 30_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, agent: false, headers: { connection: 'close', ...(method === 'POST' ? { authorization: `Bearer ${TOKEN}` } : {}) }, timeout: timeoutMs },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end();
  });
}

interface NodeStatus {
  name: string;
  up: boolean;
  pool?: { active?: number; idle?: number };
}
async function proxyStatus(adminPort: number): Promise<{ name: string; nodes: NodeStatus[] }[]> {
  const r = await admin(adminPort, 'GET', '/status');
  return (JSON.parse(r.body) as { clusters: { name: string; nodes: NodeStatus[] }[] }).clusters;
}
async function pools(adminPort: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const c of await proxyStatus(adminPort).catch(() => [])) for (const n of c.nodes) out[`${c.name}/${n.name}`] = (n.pool?.active ?? 0) + (n.pool?.idle ?? 0);
  return out;
}

function configYaml(adminPort: number, pgPort: number, myPort: number, pgc: SoakCluster, myc: SoakCluster, flip: boolean): string {
  // Replica weights alternate 1:3 / 3:1 on every reload; the primary keeps weight 1 (reads go to it only as a fallback).
  const nodes = (c: SoakCluster) =>
    c.info.nodes
      .map((n, i) => `      - { name: ${n.name}, host: ${n.host}, port: ${n.port}, weight: ${n.role === 'primary' ? 1 : (i % 2 === 1) !== flip ? 1 : 3} }`)
      .join('\n');
  const cluster = (name: string, protocol: Proto, port: number, c: SoakCluster) => `  - name: ${name}
    protocol: ${protocol}
    listen: 127.0.0.1:${port}
    nodes:
${nodes(c)}
    users:
      - { name: ${c.info.users.app.user}, password: "${c.info.users.app.password}" }
    pool:
      size: 10
    health:
      interval: 250ms
      timeout: 1s
`;
  return `admin:
  listen: 127.0.0.1:${adminPort}
  token: ${TOKEN}
log:
  level: warn
  format: json
clusters:
${cluster('pg', 'postgres', pgPort, pgc)}${cluster('my', 'mysql', myPort, myc)}`;
}

// ---------------------------------------------------------------- load

interface Conn {
  query(sql: string, params?: unknown[], prepared?: string): Promise<unknown[]>;
  broken(): boolean;
  close(): Promise<void>;
}

async function pgConn(port: number, c: SoakCluster, onLoss: () => void): Promise<Conn> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: c.info.users.app.user, password: c.info.users.app.password, database: c.info.database, query_timeout: 30_000, connectionTimeoutMillis: 10_000 });
  let broken = false;
  const lost = () => {
    if (!broken) onLoss();
    broken = true;
  };
  client.on('error', lost);
  client.on('end', lost);
  await client.connect();
  return {
    query: async (sql, params, prepared) => (await client.query(prepared ? { name: prepared, text: sql, values: params } : params ? { text: sql, values: params } : sql)).rows,
    broken: () => broken,
    close: async () => {
      broken = true;
      await client.end().catch(() => undefined);
    },
  };
}

async function myConn(port: number, c: SoakCluster, onLoss: () => void): Promise<Conn> {
  const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: c.info.users.app.user, password: c.info.users.app.password, database: c.info.database, connectTimeout: 10_000 });
  let broken = false;
  const lost = () => {
    if (!broken) onLoss();
    broken = true;
  };
  conn.on('error', lost);
  conn.on('end', lost);
  return {
    // `prepared`: a server-side prepared statement (COM_STMT_PREPARE/EXECUTE, cached by mysql2); otherwise COM_QUERY.
    query: async (sql, params, prepared) => {
      const values = (params ?? []) as (string | number)[];
      const [rows] = prepared ? await conn.execute({ sql, timeout: 30_000 }, values) : await conn.query({ sql, timeout: 30_000 }, values);
      return Array.isArray(rows) ? rows : [rows];
    },
    broken: () => broken,
    close: async () => {
      broken = true;
      await conn.end().catch(() => conn.destroy());
    },
  };
}

function sqlFor(proto: Proto) {
  const p = (i: number) => (proto === 'postgres' ? `$${i}` : '?');
  return {
    insert: `INSERT INTO soak_w (id, who, payload) VALUES (${p(1)}, ${p(2)}, ${p(3)})`,
    count: 'SELECT count(*) AS n FROM soak_w',
    recent: `SELECT id, who, payload FROM soak_w WHERE id > ${p(1)} ORDER BY id DESC LIMIT 20`,
    calc: proto === 'postgres' ? 'SELECT $1::int + 1 AS v, inet_server_port() AS port' : 'SELECT ? + 1 AS v, @@port AS port',
    ownWrite: `SELECT count(*) AS n FROM soak_w WHERE id IN (${p(1)}, ${p(2)})`,
  };
}

interface LoadState {
  t0: number;
  endAt: number;
  results: Record<Proto, ProtoResult>;
  ackedIds: Record<Proto, number[]>;
  nextId: Record<Proto, number>;
  errors: ClientError[];
}

function errInfo(e: unknown): { code?: string; message: string } {
  const x = e as { code?: string | number; message?: string };
  return { code: x?.code !== undefined ? String(x.code) : undefined, message: String(x?.message ?? e).slice(0, 300) };
}

async function session(proto: Proto, idx: number, role: 'reader' | 'writer' | 'mixed', open: (onLoss: () => void) => Promise<Conn>, st: LoadState, pauseMs: number): Promise<void> {
  const name = `${proto}-${role}-${idx}`;
  const r = st.results[proto];
  const q = sqlFor(proto);
  const now = () => (performance.now() - st.t0) / 1000;
  const fail = (kind: ClientError['kind'], e: unknown) => st.errors.push({ proto, session: name, kind, t: now(), ...errInfo(e) });
  let conn: Conn | null = null;
  let step = 0;
  const payload = 'p'.repeat(100 + idx * 50);
  while (Date.now() < st.endAt) {
    if (!conn || conn.broken()) {
      await conn?.close();
      conn = null;
      try {
        conn = await open(() => r.sessionLosses++);
      } catch (e) {
        r.connectErrors++;
        fail('connect', e);
        await sleep(500);
        continue;
      }
    }
    step++;
    const c: Conn = conn;
    const read = async () => {
      try {
        if (step % 3 === 0) await c.query(q.count);
        else if (step % 3 === 1) await c.query(q.recent, [Math.max(0, st.nextId[proto] - 200)], 'soak_recent');
        else await c.query(q.calc, [step]);
        r.reads++;
      } catch (e) {
        r.readErrors++;
        fail('read', e);
      }
    };
    if (role === 'reader') await read();
    else if (role === 'writer') {
      const id = st.nextId[proto]++;
      try {
        await c.query(q.insert, [id, name, payload], step % 2 ? 'soak_insert' : undefined);
        st.ackedIds[proto].push(id);
        r.writes++;
      } catch (e) {
        r.writeErrors++;
        fail('write', e);
      }
    } else {
      // A transaction of two inserts and a read of them; then a read outside it (reads its own writes).
      if (step % 2 === 0) {
        const a = st.nextId[proto]++;
        const b = st.nextId[proto]++;
        let began = false;
        try {
          await c.query(proto === 'postgres' ? 'BEGIN' : 'START TRANSACTION');
          began = true;
          await c.query(q.insert, [a, name, payload]);
          await c.query(q.insert, [b, name, payload]);
          const rows = (await c.query(q.ownWrite, [a, b])) as { n: number | string }[];
          if (Number(rows[0]?.n) !== 2) throw new Error(`own writes not visible in the transaction: ${JSON.stringify(rows)}`);
          await c.query('COMMIT');
          st.ackedIds[proto].push(a, b);
          r.transactions++;
          r.writes += 2;
        } catch (e) {
          r.txErrors++;
          fail('tx', e);
          if (began && !c.broken()) await c.query('ROLLBACK').catch(() => undefined);
        }
      } else await read();
    }
    if (pauseMs > 0) await sleep(pauseMs);
  }
  await conn?.close();
}

// ---------------------------------------------------------------- the soak

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const durationS = opts.durationS;
  const warmupS = opts.warmupS ?? Math.min(120, Math.max(20, Math.round(durationS / 5)));
  const sessions = opts.sessions ?? 4;
  const reloadEveryS = opts.reloadEveryS ?? 10;
  const restartEveryS = opts.restartEveryS ?? 60;
  const downS = opts.downS ?? 3;
  const pauseMs = opts.pauseMs ?? 2;
  const rssTolerance = opts.rssTolerance ?? 0.1;
  const fdTolerance = opts.fdTolerance ?? 6;
  const nodeArgs = [...(opts.nodeArgs ?? [])];
  if (opts.traceGc !== false && !nodeArgs.includes('--trace-gc')) nodeArgs.push('--trace-gc');
  const cli = join(ROOT, 'dist', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);

  const own: { stopAll(): Promise<void> }[] = [];
  let child: ChildProcess | null = null;
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-soak-'));
  try {
    // 1. Clusters (private: replicas are restarted).
    let pgc = opts.pg;
    let myc = opts.maria;
    if (!pgc || !myc) {
      log('starting PostgreSQL and MariaDB clusters (primary + 2 replicas each)');
      const [{ PgCluster }, { MariaCluster }] = await Promise.all([import('../src/devcluster/pg.js'), import('../src/devcluster/mariadb.js')]);
      const [p, m] = await Promise.all([pgc ? null : PgCluster.start({ replicas: 2 }), myc ? null : MariaCluster.start({ replicas: 2 })]);
      if (p) own.push(p);
      if (m) own.push(m);
      // Ctrl-C / SIGTERM: stop the proxy and the clusters started here before leaving.
      const onSignal = (sig: NodeJS.Signals) => {
        if (child && child.exitCode === null) child.kill('SIGKILL');
        void Promise.all(own.map((c) => c.stopAll().catch(() => undefined))).finally(() => {
          rmSync(dir, { recursive: true, force: true });
          process.exit(sig === 'SIGINT' ? 130 : 143);
        });
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      pgc ??= p!;
      myc ??= m!;
    }
    const primaryOf = (c: SoakCluster) => c.info.nodes.find((n) => n.role === 'primary')!;
    const replicasOf = (c: SoakCluster) => c.info.nodes.filter((n) => n.role === 'replica');

    // 2. The table, on the primaries directly, replicated before the load starts.
    {
      const p = primaryOf(pgc);
      const c = new pg.Client({ host: p.host, port: p.port, user: pgc.info.users.app.user, password: pgc.info.users.app.password, database: pgc.info.database });
      await c.connect();
      await c.query('DROP TABLE IF EXISTS soak_w; CREATE TABLE soak_w (id bigint PRIMARY KEY, who text NOT NULL, payload text NOT NULL)');
      await c.end();
      const m = primaryOf(myc);
      const mc = await mysql.createConnection({ host: m.host, port: m.port, user: myc.info.users.app.user, password: myc.info.users.app.password, database: myc.info.database });
      await mc.query('DROP TABLE IF EXISTS soak_w');
      await mc.query('CREATE TABLE soak_w (id BIGINT PRIMARY KEY, who VARCHAR(40) NOT NULL, payload TEXT NOT NULL) ENGINE=InnoDB');
      await mc.end();
      await Promise.all([pgc.waitForReplication(), myc.waitForReplication()]);
    }

    // 3. The proxy, its own process.
    const [adminPort, pgPort, myPort] = [await freePort(), await freePort(), await freePort()];
    const configPath = join(dir, 'switchyard.yaml');
    let flip = false;
    writeFileSync(configPath, configYaml(adminPort, pgPort, myPort, pgc, myc, flip));
    const out: string[] = [];
    const err: string[] = [];
    const proc = spawn(process.execPath, [...nodeArgs, cli, 'start', '-c', configPath, '--no-watch'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    // --trace-gc lines, parsed as they come: the soak time of every full collection (Mark-Compact).
    const majorGcs: NonNullable<SoakResult['majorGcs']> = [];
    let loadT0: number | null = null;
    let gcWaiter: (() => void) | null = null;
    let partial = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out.push(d);
      const lines = (partial + d).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const mc = /\s(\d+) ms: Mark-Compact ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB/.exec(line);
        if (!mc) continue;
        const t = loadT0 === null ? -1 : Math.round((performance.now() - loadT0) / 100) / 10;
        majorGcs.push({ t, uptimeS: Math.round(Number(mc[1]) / 100) / 10, usedBeforeMb: Number(mc[2]), usedAfterMb: Number(mc[4]), heapAfterMb: Number(mc[5]) });
        gcWaiter?.();
      }
    });
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => err.push(d));
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    const pid = proc.pid!;
    const readyBy = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`proxy exited at start: ${err.join('')}${out.join('')}`);
      const st = await proxyStatus(adminPort).catch(() => null);
      if (st && st.length === 2 && st.every((c) => c.nodes.every((n) => n.up))) break;
      if (Date.now() > readyBy) throw new Error(`proxy not ready in 30s: ${err.join('')}${out.join('')}`);
      await sleep(200);
    }
    log(`proxy pid ${pid}: postgres on ${pgPort}, mysql on ${myPort}, admin on ${adminPort}; load for ${durationS}s (warm-up ${warmupS}s), ${sessions} sessions per protocol`);

    // 4. Load, reloads, restarts, samples.
    const empty = (): ProtoResult => ({ reads: 0, writes: 0, transactions: 0, readErrors: 0, writeErrors: 0, txErrors: 0, connectErrors: 0, sessionLosses: 0, acked: 0, rowsOnPrimary: 0, missing: [], unackedPresent: 0 });
    const t0 = performance.now();
    loadT0 = t0;
    const st: LoadState = { t0, endAt: Date.now() + durationS * 1000, results: { postgres: empty(), mysql: empty() }, ackedIds: { postgres: [], mysql: [] }, nextId: { postgres: 1, mysql: 1 }, errors: [] };
    const now = () => (performance.now() - t0) / 1000;
    const roles = (i: number): 'reader' | 'writer' | 'mixed' => (i === 2 ? 'writer' : i === 3 ? 'mixed' : 'reader');
    const load: Promise<void>[] = [];
    for (let i = 0; i < sessions; i++) {
      load.push(session('postgres', i, roles(i), (l) => pgConn(pgPort, pgc!, l), st, pauseMs));
      load.push(session('mysql', i, roles(i), (l) => myConn(myPort, myc!, l), st, pauseMs));
    }

    const samples: Sample[] = [];
    let sampling = true;
    const sampler = (async () => {
      for (let i = 0; sampling && proc.exitCode === null; i++) {
        try {
          const s: Sample = { t: Math.round(now() * 10) / 10, rssKb: rssKb(pid), fds: fdCount(pid) };
          samples.push(s);
          if (i % 5 === 0) Object.assign(s, await heapOf(adminPort).catch(() => ({})));
        } catch {
          /* exited */
        }
        await sleep(1000);
      }
    })();

    const reloads = { ok: 0, failed: 0, maxMs: 0, problems: [] as string[] };
    const reloader = (async () => {
      for (let k = 1; ; k++) {
        const at = k * reloadEveryS;
        if (at >= durationS - 1) return;
        await sleep(Math.max(0, (at - now()) * 1000));
        flip = !flip;
        writeFileSync(configPath, configYaml(adminPort, pgPort, myPort, pgc!, myc!, flip));
        const t = performance.now();
        try {
          const r = await admin(adminPort, 'POST', '/reload');
          reloads.maxMs = Math.max(reloads.maxMs, Math.round(performance.now() - t));
          if (r.status === 200 && /"ok":\s*true/.test(r.body)) reloads.ok++;
          else {
            reloads.failed++;
            reloads.problems.push(`t=${now().toFixed(1)}s ${r.status} ${r.body.slice(0, 300)}`);
          }
        } catch (e) {
          reloads.failed++;
          reloads.problems.push(`t=${now().toFixed(1)}s ${(e as Error).message}`);
        }
      }
    })();

    const restarts: SoakResult['restarts'] = [];
    const order: { proto: Proto; c: SoakCluster; node: string }[] = [];
    for (let i = 0; i < Math.max(replicasOf(pgc).length, replicasOf(myc).length); i++) {
      const pr = replicasOf(pgc)[i];
      const mr = replicasOf(myc)[i];
      if (pr) order.push({ proto: 'postgres', c: pgc, node: pr.name });
      if (mr) order.push({ proto: 'mysql', c: myc, node: mr.name });
    }
    const restarter = (async () => {
      for (let k = 0; ; k++) {
        const at = warmupS + 20 + k * restartEveryS;
        // Leave time for the node to come back and the pools to settle before the end samples.
        if (at + downS + 15 > durationS) return;
        await sleep(Math.max(0, (at - now()) * 1000));
        const { proto, c, node } = order[k % order.length]!;
        const rec: SoakResult['restarts'][number] = { node, proto, tStop: now(), tStarted: 0, tProxySawUp: null };
        restarts.push(rec);
        log(`t=${rec.tStop.toFixed(1)}s restart ${node}`);
        await c.stop(node);
        await sleep(downS * 1000);
        await c.start(node);
        rec.tStarted = now();
        const cluster = proto === 'postgres' ? 'pg' : 'my';
        for (let i = 0; i < 150; i++) {
          const sts = await proxyStatus(adminPort).catch(() => []);
          if (sts.find((x) => x.name === cluster)?.nodes.find((n) => n.name === node)?.up) {
            rec.tProxySawUp = now();
            break;
          }
          await sleep(200);
        }
        log(`t=${now().toFixed(1)}s ${node} back (up in the proxy: ${rec.tProxySawUp !== null})`);
      }
    })();

    const window = async (fromS: number, n: number) => {
      await sleep(Math.max(0, (fromS - now()) * 1000));
      const rss: number[] = [];
      const fds: number[] = [];
      for (let i = 0; i < n; i++) {
        rss.push(rssKb(pid));
        fds.push(fdCount(pid));
        if (i < n - 1) await sleep(1000);
      }
      return { rss: median(rss), fds: median(fds) };
    };
    const warm = await window(warmupS, 5);
    const poolsWarmup = await pools(adminPort);
    log(`warm-up (t=${warmupS}s): RSS ${Math.round(warm.rss / 1024)}MB, ${warm.fds} fds, pools ${JSON.stringify(poolsWarmup)}`);
    // Until V8's first full collection under load the old generation holds every promoted object,
    // garbage included, and the heap grows towards its working size (measured: first Mark-Compact
    // after 48-100s of this load, then live heap flat); that collection frees the garbage but
    // keeps the grown heap, the next one sizes the heap to what is live. So the RSS baseline is
    // taken just after the second full collection after warm-up (after the first if only one
    // comes before the last 15s; the warm-up value if none does).
    let postGc: { rss: number; fds: number; t: number } | null = null;
    if (opts.traceGc !== false) {
      const lastChance = durationS - 15;
      const after = () => majorGcs.filter((g) => g.t >= warmupS && g.t < lastChance);
      while (after().length < 2 && now() < lastChance) await new Promise<void>((r) => ((gcWaiter = r), setTimeout(r, 500)));
      gcWaiter = null;
      const gcs = after();
      const g = gcs[Math.min(1, gcs.length - 1)];
      if (g) {
        const w = await window(g.t + 1, 3);
        postGc = { ...w, t: g.t };
        log(`full GC #${gcs.indexOf(g) + 1} under load after warm-up at t=${g.t}s (${g.usedBeforeMb} -> ${g.usedAfterMb}MB used, heap ${g.heapAfterMb}MB): RSS ${Math.round(w.rss / 1024)}MB`);
      } else log('no full GC under load after warm-up before the end window: the RSS baseline is the warm-up value');
    }
    const rssAtBaselinePoint = postGc?.rss ?? warm.rss;
    const end = await window(durationS - 6, 5);
    // A full collection may also shrink V8's committed heap, and the heap grows back to its
    // working size over the next minute (10-minute run of 2026-12-04: heapTotal 54 MB just after
    // the baseline GC at t=160s, 64 MB from t=240s to the end, RSS 109 -> 115-117 MB and flat,
    // live heap 21.6 -> 22.5 MB). A baseline taken at the bottom of that dip reads the regrowth
    // as a leak (+12.3%). So the baseline is the highest per-second RSS in the minute after the
    // baseline point (at most up to the end window); a leak still shows as growth after it.
    const baselineFrom = postGc ? postGc.t : warmupS;
    const baselineTo = Math.min(baselineFrom + 60, durationS - 10);
    const inMinute = samples.filter((x) => x.t >= baselineFrom && x.t <= baselineTo).map((x) => x.rssKb);
    const rssBaseline = Math.max(rssAtBaselinePoint, ...inMinute);
    const poolsEnd = await pools(adminPort);
    const rssPeakKb = hwmKb(pid);
    log(`end (t=${now().toFixed(0)}s): RSS ${Math.round(end.rss / 1024)}MB, ${end.fds} fds, pools ${JSON.stringify(poolsEnd)}`);

    await Promise.all(load);
    await Promise.all([reloader, restarter]);
    sampling = false;
    await sampler;

    // 5. Every acknowledged write on the primary.
    await Promise.all([pgc.waitForReplication(60_000).catch(() => undefined), myc.waitForReplication(60_000).catch(() => undefined)]);
    const idsOnPrimary: Record<Proto, Set<number>> = { postgres: new Set(), mysql: new Set() };
    {
      const p = primaryOf(pgc);
      const c = new pg.Client({ host: p.host, port: p.port, user: pgc.info.users.app.user, password: pgc.info.users.app.password, database: pgc.info.database });
      await c.connect();
      for (const row of (await c.query('SELECT id FROM soak_w')).rows as { id: string }[]) idsOnPrimary.postgres.add(Number(row.id));
      await c.end();
      const m = primaryOf(myc);
      const mc = await mysql.createConnection({ host: m.host, port: m.port, user: myc.info.users.app.user, password: myc.info.users.app.password, database: myc.info.database });
      const [rows] = await mc.query('SELECT id FROM soak_w');
      for (const row of rows as { id: number | string }[]) idsOnPrimary.mysql.add(Number(row.id));
      await mc.end();
    }
    for (const proto of ['postgres', 'mysql'] as Proto[]) {
      const r = st.results[proto];
      const acked = new Set(st.ackedIds[proto]);
      r.acked = acked.size;
      r.rowsOnPrimary = idsOnPrimary[proto].size;
      r.missing = [...acked].filter((id) => !idsOnPrimary[proto].has(id)).slice(0, 100);
      r.unackedPresent = [...idsOnPrimary[proto]].filter((id) => !acked.has(id)).length;
    }

    // 6. The proxy: alive, then stopped; its log and stderr.
    const alive = proc.exitCode === null && proc.signalCode === null;
    proc.kill('SIGTERM');
    await Promise.race([exited, sleep(15_000)]);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    const unhandledLines: string[] = [];
    const proxyErrorLogs: Record<string, number> = {};
    const proxyWarnLogs: Record<string, number> = {};
    // pino writes the log to stderr (stdout stays empty); every line must be a log record.
    let gcTraceLines = 0;
    for (const [stream, text] of [['stdout', out.join('')], ['stderr', err.join('')]] as const) {
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        // --trace-gc lines (only when asked for with nodeArgs).
        if (nodeArgs.includes('--trace-gc') && /^\[\d+:0x[0-9a-f]+\]/.test(line)) {
          gcTraceLines++;
          continue;
        }
        let rec: { level?: number; msg?: string } | null = null;
        try {
          rec = JSON.parse(line) as { level?: number; msg?: string };
        } catch {
          unhandledLines.push(`${stream} (not a log record): ${line.slice(0, 300)}`);
          continue;
        }
        const msg = String(rec.msg ?? '');
        if (/uncaught|unhandled/i.test(msg) || (rec.level ?? 0) >= 60) unhandledLines.push(line.slice(0, 500));
        else if ((rec.level ?? 0) >= 50) proxyErrorLogs[msg] = (proxyErrorLogs[msg] ?? 0) + 1;
        else if ((rec.level ?? 0) >= 40) proxyWarnLogs[msg] = (proxyWarnLogs[msg] ?? 0) + 1;
      }
    }
    if (gcTraceLines) log(`${gcTraceLines} --trace-gc lines`);

    const windows = restarts.map((w) => [w.tStop - 1, (w.tProxySawUp ?? w.tStarted) + 5] as const);
    for (const e of st.errors) e.inRestartWindow = windows.some(([a, b]) => e.t >= a && e.t <= b);
    const inWin = st.errors.filter((e) => e.inRestartWindow).length;

    const pct = (a: number, b: number) => Math.round(((b - a) / a) * 1000) / 10;
    const rssGrowthPct = pct(rssBaseline, end.rss);
    // Live heap after full collections under load (from the first after warm-up to the last).
    const gcsUnderLoad = majorGcs.filter((g) => g.t >= warmupS);
    const liveHeap = gcsUnderLoad.length >= 2 ? { firstMb: gcsUnderLoad[0]!.usedAfterMb, lastMb: gcsUnderLoad[gcsUnderLoad.length - 1]!.usedAfterMb, maxMb: Math.max(...gcsUnderLoad.map((g) => g.usedAfterMb)), collections: gcsUnderLoad.length } : null;
    const result: SoakResult = {
      startedAt: new Date(Date.now() - durationS * 1000).toISOString(),
      durationS,
      warmupS,
      sessionsPerProtocol: sessions,
      nodeArgs,
      proxy: {
        pid,
        rssWarmupKb: warm.rss,
        rssAfterFirstGcKb: postGc?.rss ?? null,
        firstGcT: postGc?.t ?? null,
        rssBaselineKb: rssBaseline,
        rssGrowthFromBaselinePointPct: pct(rssAtBaselinePoint, end.rss),
        rssGrowthFromWarmupPct: pct(warm.rss, end.rss),
        liveHeapAfterFullGc: liveHeap,
        rssEndKb: end.rss,
        rssGrowthPct,
        rssPeakKb,
        fdsWarmup: warm.fds,
        fdsEnd: end.fds,
        fdGrowth: end.fds - warm.fds,
        alive,
        exitCode: proc.exitCode,
        poolsWarmup,
        poolsEnd,
      },
      reloads,
      restarts,
      protocols: st.results,
      clientErrors: { total: st.errors.length, inRestartWindows: inWin, outsideRestartWindows: st.errors.length - inWin, first: st.errors.slice(0, 50) },
      unhandled: { count: unhandledLines.length, lines: unhandledLines.slice(0, 50) },
      proxyErrorLogs,
      proxyWarnLogs,
      majorGcs,
      samples,
      failures: [],
      ok: false,
    };
    const f = result.failures;
    if (!alive) f.push('the proxy exited during the soak');
    if (end.rss > rssBaseline * (1 + rssTolerance)) f.push(`RSS grew ${rssGrowthPct}% (${rssBaseline} -> ${end.rss} kB), over ${rssTolerance * 100}%`);
    if (liveHeap && liveHeap.lastMb > liveHeap.firstMb * (1 + rssTolerance)) f.push(`live heap after full GCs grew ${liveHeap.firstMb} -> ${liveHeap.lastMb}MB`);
    if (end.fds > warm.fds + fdTolerance) f.push(`open fds grew ${warm.fds} -> ${end.fds} (tolerance ${fdTolerance})`);
    if (unhandledLines.length) f.push(`${unhandledLines.length} unhandled-error / stderr lines from the proxy`);
    for (const proto of ['postgres', 'mysql'] as Proto[]) {
      const r = st.results[proto];
      if (r.missing.length) f.push(`${proto}: ${r.missing.length} acknowledged writes missing on the primary (e.g. ${r.missing.slice(0, 5).join(', ')})`);
      if (r.acked === 0 || r.reads === 0) f.push(`${proto}: no load went through (${r.reads} reads, ${r.acked} acked writes)`);
    }
    if (result.clientErrors.outsideRestartWindows) f.push(`${result.clientErrors.outsideRestartWindows} client errors outside replica restart windows`);
    if (reloads.failed || reloads.ok === 0) f.push(`reloads: ${reloads.ok} ok, ${reloads.failed} failed`);
    if (restarts.length === 0 || restarts.some((w) => w.tProxySawUp === null)) f.push(`restarts: ${restarts.length}, not seen up again: ${restarts.filter((w) => w.tProxySawUp === null).map((w) => w.node).join(', ')}`);
    result.ok = f.length === 0;
    return result;
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(own.map((c) => c.stopAll().catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The figures in a few lines. */
export function summarize(r: SoakResult): string {
  const mb = (kb: number) => (kb / 1024).toFixed(1);
  const p = (x: Proto) => {
    const s = r.protocols[x];
    return `${x}: ${s.reads} reads, ${s.writes} writes (${s.transactions} tx), acked ${s.acked}, on primary ${s.rowsOnPrimary}, missing ${s.missing.length}, unacked present ${s.unackedPresent}; errors read ${s.readErrors} write ${s.writeErrors} tx ${s.txErrors} connect ${s.connectErrors}, session losses ${s.sessionLosses}`;
  };
  return [
    `soak ${r.durationS}s (warm-up ${r.warmupS}s), ${r.sessionsPerProtocol} sessions per protocol${r.nodeArgs.length ? `, node ${r.nodeArgs.join(' ')}` : ''}`,
    `proxy RSS ${mb(r.proxy.rssWarmupKb)}MB after warm-up (t=${r.warmupS}s)${r.proxy.rssAfterFirstGcKb !== null ? `, ${mb(r.proxy.rssAfterFirstGcKb)}MB after full GCs under load (t=${r.proxy.firstGcT}s)` : ''} -> ${mb(r.proxy.rssEndKb)}MB at the end (${r.proxy.rssGrowthPct >= 0 ? '+' : ''}${r.proxy.rssGrowthPct}% vs the baseline ${mb(r.proxy.rssBaselineKb)}MB, the highest in the minute after that point; ${r.proxy.rssGrowthFromBaselinePointPct >= 0 ? '+' : ''}${r.proxy.rssGrowthFromBaselinePointPct}% vs the point itself, ${r.proxy.rssGrowthFromWarmupPct >= 0 ? '+' : ''}${r.proxy.rssGrowthFromWarmupPct}% vs warm-up), peak ${mb(r.proxy.rssPeakKb)}MB; fds ${r.proxy.fdsWarmup} -> ${r.proxy.fdsEnd}`,
    r.proxy.liveHeapAfterFullGc ? `live heap after ${r.proxy.liveHeapAfterFullGc.collections} full GCs under load: first ${r.proxy.liveHeapAfterFullGc.firstMb}MB, last ${r.proxy.liveHeapAfterFullGc.lastMb}MB, max ${r.proxy.liveHeapAfterFullGc.maxMb}MB` : 'live heap: fewer than 2 full GCs under load',
    p('postgres'),
    p('mysql'),
    `reloads ${r.reloads.ok} ok / ${r.reloads.failed} failed (slowest ${r.reloads.maxMs}ms); restarts ${r.restarts.map((w) => `${w.node}@${w.tStop.toFixed(0)}s`).join(', ')}`,
    `client errors ${r.clientErrors.total} (${r.clientErrors.inRestartWindows} during restarts); unhandled ${r.unhandled.count}; proxy error logs ${JSON.stringify(r.proxyErrorLogs)}`,
    r.ok ? 'OK' : `FAILED: ${r.failures.join('; ')}`,
  ].join('\n');
}

// ---------------------------------------------------------------- CLI

function parseArgs(argv: string[]): SoakOptions & { name: string } {
  const o: SoakOptions & { name: string } = { durationS: 600, name: 'soak' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => argv[++i] ?? '';
    if (a === '--duration') o.durationS = parseDuration(v());
    else if (a === '--warmup') o.warmupS = parseDuration(v());
    else if (a === '--sessions') o.sessions = Number(v());
    else if (a === '--pause') o.pauseMs = parseDuration(v()) * 1000;
    else if (a === '--name') o.name = v();
    else if (a === '--node-arg') (o.nodeArgs ??= []).push(v());
    else throw new Error(`unknown option ${a} (--duration 10m --warmup 60s --sessions 4 --pause 2ms --name soak --node-arg ...)`);
  }
  return o;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const o = parseArgs(process.argv.slice(2));
  runSoak(o).then(
    (r) => {
      const dir = join(ROOT, 'bench', 'results');
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${o.name}.json`);
      writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
      console.log(summarize(r));
      console.log(`wrote ${file}`);
      process.exit(r.ok ? 0 : 1);
    },
    (e) => {
      console.error(e);
      process.exit(2);
    },
  );
}
