/**
 * CPU instructions switchyard executes per MySQL query (and per sysbench transaction),
 * counted by Valgrind (cachegrind, user space only): the MariaDB counterpart of
 * bench/instructions.ts, for the same reason (an instruction count moves by well under
 * 1% between runs on a shared 2-core machine, TPS by 30%).
 *
 *   tsx bench/instructions-mysql.ts [--events 3000] [--workload oltp_read_only|oltp_point_select]
 *                                   [--skip-trx] [--name instructions-mysql] [--peer-only]
 *
 *   1. start a MariaDB primary + 2 GTID replicas and prepare one sysbench table on the primary;
 *   2. run the proxy (dist/cli.js, single-threaded V8) under cachegrind twice, once for a short
 *      (N/3) and once for a long (N) `sysbench --threads=1 --events=… --time=0` run;
 *   3. per query = (Ir(long) - Ir(short)) / (queries(long) - queries(short)), the query counts
 *      from sysbench's own "queries:" line, so start-up and most JIT warm-up cancel out
 *      (optimising compiles that land in one run only still move the figure: compare runs of
 *      this script, repeat when a change is small); per transaction likewise;
 *   4. print the functions whose count grew most per query (V8 builtins, GC and libuv by
 *      name; JIT-compiled JavaScript shows as ???).
 * HAProxy (TCP mode, one frontend to the primary) is measured the same way as the peer
 * (--peer-only: only HAProxy and the relay), and so is bench/node-relay.mjs, the floor of a
 * Node.js proxy (bytes relayed, nothing parsed). Kernel work (the socket syscalls) is not counted.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { MariaCluster } from '../src/devcluster/mariadb.js';
import { freePort } from '../src/devcluster/proc.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
// SWITCHYARD_DIST measures another build (e.g. a worktree of an older commit) with this script.
const DIST = process.env.SWITCHYARD_DIST ?? join(ROOT, 'dist');
const HAPROXY = '/usr/sbin/haproxy';
const TABLE = ['--tables=1', '--table-size=10000'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves when `child` has exited, also when it already had (an 'exit' listener added late never fires). */
const exited = (child: ChildProcess) =>
  new Promise<void>((res) => (child.exitCode !== null || child.signalCode !== null ? res() : child.once('exit', () => res())));

/** Every server this script spawns, so the finally block can stop what an error left running. */
const children = new Set<ChildProcess>();
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    // Valgrind writes its output file on exit: give it time, then force.
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited(child);
    clearTimeout(t);
  }
  children.delete(child);
}

const WORKLOADS = ['oltp_read_only', 'oltp_point_select'];

function args() {
  const o = { events: 3000, workload: 'oltp_read_only', skipTrx: false, name: 'instructions-mysql', peerOnly: false };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--events') o.events = Number(a[++i]);
    else if (a[i] === '--workload') o.workload = a[++i]!;
    else if (a[i] === '--skip-trx') o.skipTrx = true;
    else if (a[i] === '--name') o.name = a[++i]!;
    else if (a[i] === '--peer-only') o.peerOnly = true;
    else throw new Error(`unknown option ${a[i]}`);
  }
  if (!WORKLOADS.includes(o.workload)) throw new Error(`--workload must be one of ${WORKLOADS.join(', ')}`);
  if (!Number.isInteger(o.events) || o.events < 3) throw new Error('--events must be an integer >= 3');
  return o;
}

async function waitReady(adminPort: number, timeoutMs: number, child: ChildProcess): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('proxy exited before it was ready');
    if (await fetch(`http://127.0.0.1:${adminPort}/readyz`).then((r) => r.ok).catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(`proxy not ready within ${timeoutMs} ms`);
}

async function waitPort(port: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const up = await new Promise<boolean>((res) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); res(true); }).once('error', () => res(false));
    });
    if (up) return;
    await sleep(250);
  }
  throw new Error(`port ${port} not open within ${timeoutMs} ms`);
}

function config(port: number, admin: number, nodes: { name: string; port: number }[], user: { user: string; password: string }): string {
  return `admin:
  listen: 127.0.0.1:${admin}
log:
  level: warn
clusters:
  - name: bench
    protocol: mysql
    listen: 127.0.0.1:${port}
    nodes:
${nodes.map((n) => `      - { name: ${n.name}, host: 127.0.0.1, port: ${n.port} }`).join('\n')}
    roles: auto
    users:
      - { name: ${user.user}, password: "${user.password}" }
    pool:
      size: 4
      idle_timeout: 10m
    # Health checks run by the clock, and under Valgrind a run lasts minutes: a slow interval
    # keeps their work (not per query) out of the count.
    health: { interval: 5s, timeout: 4s }
    # Lenient, so that a replica slowed by the shared machine is not dropped mid-run (which
    # would send reads elsewhere and change what is counted).
    routing:
      max_replica_lag: { bytes: 64MB, time: 5s }
`;
}

/** Total Ir and Ir per function of a cachegrind output file. */
function readCachegrind(file: string): { total: number; byFn: Map<string, number> } {
  const text = readFileSync(file, 'utf8');
  const summary = /^summary:\s+(\d+)/m.exec(text);
  const total = Number(summary?.[1] ?? NaN);
  // The raw format: "fl=FILE" / "fn=NAME" lines, then "LINE COUNT" lines for that function.
  const byFn = new Map<string, number>();
  let fl = '';
  let fn = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('fl=')) fl = line.slice(3);
    else if (line.startsWith('fn=')) fn = `${line.slice(3)} (${fl.split('/').slice(-2).join('/')})`;
    else if (fn && /^\d/.test(line)) {
      const sp = line.indexOf(' ');
      byFn.set(fn, (byFn.get(fn) ?? 0) + Number(line.slice(sp + 1)));
    }
  }
  return { total, byFn };
}

/** Per query, the functions whose instruction count grew most from the short to the long run. */
function topPerQuery(short: Map<string, number>, long: Map<string, number>, dQ: number): { ir_per_query: number; fn: string }[] {
  return [...long.entries()]
    .map(([fn, ir]) => ({ fn, ir_per_query: Math.round((ir - (short.get(fn) ?? 0)) / dQ) }))
    .sort((a, b) => b.ir_per_query - a.ir_per_query)
    .slice(0, 25);
}

interface Bench {
  workload: string;
  skipTrx: boolean;
  /** sysbench options naming the database and user; the port is added per run. */
  base: string[];
}

/** One sysbench run against `port`; returns its own counts of transactions and queries. */
function sysbench(b: Bench, port: number, events: number): { transactions: number; queries: number } {
  const r = spawnSync(
    'sysbench',
    [b.workload, ...b.base, `--mysql-port=${port}`, '--threads=1', `--events=${events}`, '--time=0', ...(b.skipTrx ? ['--skip_trx=on'] : []), 'run'],
    { encoding: 'utf8', timeout: 3_600_000 },
  );
  const transactions = Number(/transactions:\s+(\d+)/.exec(r.stdout ?? '')?.[1] ?? NaN);
  const queries = Number(/queries:\s+(\d+)/.exec(r.stdout ?? '')?.[1] ?? NaN);
  if (r.status !== 0 || !Number.isFinite(queries) || transactions !== events) {
    throw new Error(`sysbench (status ${r.status}, ${transactions} of ${events} transactions): ${(r.stderr || r.stdout || '').trim().slice(-1500)}`);
  }
  return { transactions, queries };
}

/** switchyard under cachegrind for one sysbench run of `events` transactions. */
async function measureSwitchyard(dir: string, nodes: { name: string; port: number }[], user: { user: string; password: string }, b: Bench, events: number) {
  const port = await freePort();
  const admin = await freePort();
  const cfg = join(dir, `sy-${events}.yaml`);
  writeFileSync(cfg, config(port, admin, nodes, user));
  const out = join(dir, `cg-sy-${events}.out`);
  const child = spawn(
    'valgrind',
    ['--tool=cachegrind', '--cache-sim=no', `--cachegrind-out-file=${out}`, process.execPath, '--single-threaded', join(DIST, 'cli.js'), 'start', '-c', cfg, '--no-watch'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  try {
    // Valgrind's start-up of node takes a while (tens of seconds on this machine).
    await waitReady(admin, 300_000, child);
    const counts = sysbench(b, port, events);
    await stop(child);
    return { ...readCachegrind(out), ...counts };
  } catch (e) {
    child.kill('SIGKILL');
    await stop(child);
    throw new Error(`${(e as Error).message}\n${stderr.slice(-2000)}`);
  }
}

/**
 * HAProxy under cachegrind for one sysbench run: TCP mode, one frontend to the primary (the
 * `write` listener of bench/run.ts). It forwards bytes without parsing MySQL, so this is the
 * floor a proxy in user space costs, not a like-for-like router.
 */
async function measureHaproxy(dir: string, primaryPort: number, b: Bench, events: number) {
  const port = await freePort();
  const cfg = join(dir, `haproxy-${events}.cfg`);
  // nbthread 1: switchyard is measured single-threaded; idle HAProxy threads would only add
  // polling by the clock, which the two-run difference mostly cancels anyway.
  writeFileSync(cfg, `global
  maxconn 4000
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
listen write
  bind 127.0.0.1:${port}
  server primary 127.0.0.1:${primaryPort}
`);
  return underCachegrind(dir, 'haproxy', [HAPROXY, '-db', '-f', cfg], port, b, events);
}

/**
 * bench/node-relay.mjs under cachegrind for one sysbench run (its write port, to the primary):
 * the floor of a Node.js proxy, on the same single-threaded V8 as switchyard's measurement.
 */
async function measureRelay(dir: string, primaryPort: number, b: Bench, events: number) {
  const write = await freePort();
  const read = await freePort();
  const relay = [process.execPath, '--single-threaded', join(ROOT, 'bench', 'node-relay.mjs'), '--write', String(write), '--read', String(read), '--primary', String(primaryPort), '--replicas', String(primaryPort)];
  return underCachegrind(dir, 'node-relay', relay, write, b, events);
}

/** One sysbench run through `command` (listening on `port`) under cachegrind: its instruction counts. */
async function underCachegrind(dir: string, name: string, command: string[], port: number, b: Bench, events: number) {
  const out = join(dir, `cg-${name}-${events}.out`);
  const child = spawn('valgrind', ['--tool=cachegrind', '--cache-sim=no', `--cachegrind-out-file=${out}`, ...command], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  try {
    await waitPort(port, 120_000);
    const counts = sysbench(b, port, events);
    await stop(child);
    return { ...readCachegrind(out), ...counts };
  } catch (e) {
    child.kill('SIGKILL');
    await stop(child);
    throw new Error(`${name}: ${(e as Error).message}\n${stderr.slice(-2000)}`);
  }
}

type Run = { total: number; byFn: Map<string, number>; transactions: number; queries: number };
function perUnit(short: Run, long: Run) {
  const dQ = long.queries - short.queries;
  const dTx = long.transactions - short.transactions;
  return { dQ, dTx, perQuery: (long.total - short.total) / dQ, perTx: (long.total - short.total) / dTx, queriesPerTx: dQ / dTx };
}

const fmt = (n: number | null) => (n === null ? 'not measured' : Math.round(n).toLocaleString('en'));

async function main() {
  const o = args();
  const dir = mkdtempSync(join(tmpdir(), 'sy-instr-my-'));
  console.log('starting MariaDB primary + 2 replicas ...');
  const my = await MariaCluster.start({ replicas: 2 });
  try {
    const app = my.info.users.app;
    const primary = my.info.nodes.find((n) => n.role === 'primary')!;
    const b: Bench = {
      workload: o.workload,
      skipTrx: o.skipTrx,
      base: ['--db-driver=mysql', '--mysql-host=127.0.0.1', `--mysql-user=${app.user}`, `--mysql-password=${app.password}`, `--mysql-db=${my.info.database}`, ...TABLE],
    };
    const prep = spawnSync('sysbench', ['oltp_read_only', ...b.base, `--mysql-port=${primary.port}`, 'prepare'], { encoding: 'utf8' });
    if (prep.status !== 0) throw new Error(`sysbench prepare: ${prep.stderr || prep.stdout}`);
    await my.waitForReplication(60_000);
    const nodes = my.info.nodes.map((n) => ({ name: n.name, port: n.port }));
    const shortEvents = Math.round(o.events / 3);
    const label = `sysbench ${o.workload}${o.skipTrx ? ' --skip_trx=on' : ''} --threads=1`;

    // 1. the peer: HAProxy, when installed.
    let peer: ReturnType<typeof perUnit> | null = null;
    if (existsSync(HAPROXY)) {
      const hs = await measureHaproxy(dir, primary.port, b, shortEvents);
      const hl = await measureHaproxy(dir, primary.port, b, o.events);
      peer = perUnit(hs, hl);
    }

    // 1b. the Node.js floor: bench/node-relay.mjs.
    const rs = await measureRelay(dir, primary.port, b, shortEvents);
    const rl = await measureRelay(dir, primary.port, b, o.events);
    const relay = perUnit(rs, rl);

    // 2. switchyard.
    let sy: (ReturnType<typeof perUnit> & { top: ReturnType<typeof topPerQuery> }) | null = null;
    if (!o.peerOnly) {
      const short = await measureSwitchyard(dir, nodes, app, b, shortEvents);
      const long = await measureSwitchyard(dir, nodes, app, b, o.events);
      const u = perUnit(short, long);
      sy = { ...u, top: topPerQuery(short.byFn, long.byFn, u.dQ) };
    }

    // 3. print and write.
    const qpt = (sy ?? peer)?.queriesPerTx;
    console.log(`${label}, ${shortEvents} vs ${o.events} transactions (${qpt ?? '?'} queries per transaction):`);
    if (sy) console.log(`  switchyard: ${fmt(sy.perQuery)} instructions per query, ${fmt(sy.perTx)} per transaction (user space)`);
    console.log(`  HAProxy:    ${peer ? `${fmt(peer.perQuery)} instructions per query, ${fmt(peer.perTx)} per transaction` : 'not measured'}`);
    console.log(`  node-relay: ${fmt(relay.perQuery)} instructions per query, ${fmt(relay.perTx)} per transaction`);
    if (sy) for (const t of sy.top.slice(0, 20)) console.log(`  ${String(t.ir_per_query).padStart(8)}  ${t.fn.slice(0, 150)}`);
    const result = {
      workload: label,
      clients: 1,
      transactions: o.events,
      queries_per_tx: qpt ?? null,
      instructions_per_query: sy ? Math.round(sy.perQuery) : null,
      instructions_per_tx: sy ? Math.round(sy.perTx) : null,
      haproxy_instructions_per_query: peer ? Math.round(peer.perQuery) : null,
      haproxy_instructions_per_tx: peer ? Math.round(peer.perTx) : null,
      node_relay_instructions_per_query: Math.round(relay.perQuery),
      node_relay_instructions_per_tx: Math.round(relay.perTx),
      top_functions_per_query: sy?.top ?? null,
    };
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    const file = join(ROOT, 'bench', 'results', `${o.name}.json`);
    writeFileSync(file, JSON.stringify({ when: new Date().toISOString(), node: process.version, cpus: cpus().length, results: [result] }, null, 2) + '\n');
    console.log(`wrote ${file}`);
  } finally {
    for (const c of [...children]) {
      c.kill('SIGKILL');
      await stop(c);
    }
    await my.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
