/**
 * `npm run bench`: switchyard side by side with the primary directly, HAProxy (TCP), PgBouncer
 * (transaction mode) and Pgpool-II (load balancing), on a local PostgreSQL primary + 2 replicas
 * (and sysbench on a MariaDB primary + 2 replicas). Writes bench/results/<name>.json and
 * bench/RESULTS.md.
 *
 *   tsx bench/run.ts [--duration 10s] [--quick] [--repeat 2] [--clients 1,8,64]
 *                    [--only simple,extended,prepared,tpcb,sysbench,memory] [--systems direct,...]
 *                    [--name suite] [--warmup 5s]
 *
 * Before its first measured run of each workload, every system gets an unrecorded warm-up run
 * (8 clients, --warmup seconds): V8 optimises switchyard's and the Node relay's hot functions
 * on background threads that compete with the client and the servers for the 2 cores, and at
 * 1 client the first 8-second run measured a proxy still partly unoptimised (0.20-0.22 ms
 * mean latency right after start, 0.16-0.22 ms in the same process after a 15 s warm-up).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PgCluster } from '../src/devcluster/pg.js';
import { freePort } from '../src/devcluster/proc.js';
import { MariaCluster } from '../src/devcluster/mariadb.js';
import { renderResults, type BenchResult, type SuiteResults } from './report.js';
import { runMemoryBench } from './memory.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS_DIR = join(ROOT, 'bench', 'results');

// ---------------------------------------------------------------- options
function parseArgs(argv: string[]) {
  const o = { duration: 10, repeat: 2, clients: [1, 8, 64], only: null as string[] | null, systems: null as string[] | null, name: 'suite', quick: false, warmup: 5 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => argv[++i] ?? '';
    if (a === '--duration') o.duration = parseDuration(v());
    else if (a === '--quick') { o.quick = true; o.duration = 3; o.repeat = 1; o.warmup = 1; }
    else if (a === '--warmup') o.warmup = parseDuration(v());
    else if (a === '--repeat') o.repeat = Number(v());
    else if (a === '--clients') o.clients = v().split(',').map(Number);
    else if (a === '--only') o.only = v().split(',');
    else if (a === '--systems') o.systems = v().split(',');
    else if (a === '--name') o.name = v();
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}
function parseDuration(s: string): number {
  const m = /^(\d+)(s|m)?$/.exec(s);
  if (!m) throw new Error(`bad duration ${s}`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

// ---------------------------------------------------------------- helpers
function sleep(ms: number) { return new Promise((r) => setTimeout(r, ms)); }
async function waitPort(port: number, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((res) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); res(true); });
      s.once('error', () => res(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`port ${port} not listening after ${timeoutMs} ms`);
}
function which(bin: string, extra: string[] = []): string | null {
  for (const d of [...extra, '/usr/sbin', '/usr/bin', '/usr/local/bin']) if (existsSync(join(d, bin))) return join(d, bin);
  return null;
}
const TICK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100);
/** The pid and all its descendants. */
function tree(pid: number): number[] {
  const kids = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      (kids.get(ppid) ?? kids.set(ppid, []).get(ppid)!).push(Number(e));
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) { const p = stack.pop()!; out.push(p); stack.push(...(kids.get(p) ?? [])); }
  return out;
}
/** utime+stime seconds of the process tree (children still alive). */
function cpuSeconds(pid: number): number {
  const { user, sys } = cpuSplit(pid);
  return user + sys;
}
/** utime and stime seconds of the process tree, apart: how much of the proxy's cost is the kernel's. */
function cpuSplit(pid: number): { user: number; sys: number } {
  let user = 0;
  let sys = 0;
  for (const p of tree(pid)) {
    try {
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      user += Number(f[11]);
      sys += Number(f[12]);
    } catch { /* gone */ }
  }
  return { user: user / TICK, sys: sys / TICK };
}
/** Peak RSS (VmHWM) in kB, summed over the process tree (overcounts shared pages of forked pools). */
function peakRssKb(pid: number): number {
  let t = 0;
  for (const p of tree(pid)) {
    try { t += Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0); } catch { /* gone */ }
  }
  return t;
}
function runCmd(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 600_000): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 << 20 });
  return { code: r.status ?? -1, out: r.stdout?.toString() ?? '', err: r.stderr?.toString() ?? String(r.error ?? '') };
}

// ---------------------------------------------------------------- systems
interface System {
  name: string;
  /** Where pgbench / sysbench connect. */
  port: number;
  user: string;
  password: string;
  /** The proxy's pid (null: direct). */
  pid: number | null;
  stop(): Promise<void>;
}
const children: ChildProcess[] = [];
function daemon(cmd: string, args: string[], logFile: string, opts: { uid?: number; gid?: number } = {}): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  const chunks: string[] = [];
  c.stdout!.on('data', (d) => chunks.push(String(d)));
  c.stderr!.on('data', (d) => chunks.push(String(d)));
  c.on('exit', () => { try { writeFileSync(logFile, chunks.join('')); } catch { /* dir gone */ } });
  children.push(c);
  return c;
}
async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  c.kill('SIGTERM');
  for (let i = 0; i < 50 && c.exitCode === null && c.signalCode === null; i++) await sleep(100);
  if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

type Node = { name: string; port: number; role: string };

async function startHaproxy(dir: string, primary: Node, replicas: Node[]): Promise<{ write: number; read: number; c: ChildProcess }> {
  const write = await freePort();
  const read = await freePort();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, `global
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
listen write
  bind 127.0.0.1:${write}
  server primary 127.0.0.1:${primary.port}
listen read
  bind 127.0.0.1:${read}
  balance roundrobin
${replicas.map((r) => `  server ${r.name} 127.0.0.1:${r.port}`).join('\n')}
`);
  const c = daemon(which('haproxy')!, ['-db', '-f', cfg], join(dir, 'haproxy.log'));
  await waitPort(write);
  await waitPort(read);
  return { write, read, c };
}

/**
 * The Node.js floor (bench/node-relay.mjs): HAProxy's layout, relayed by a Node process that
 * reads the way switchyard does and does nothing else.
 */
async function startNodeRelay(dir: string, primary: Node, replicas: Node[]): Promise<{ write: number; read: number; c: ChildProcess }> {
  const write = await freePort();
  const read = await freePort();
  const c = daemon(process.execPath, [join(ROOT, 'bench', 'node-relay.mjs'), '--write', String(write), '--read', String(read), '--primary', String(primary.port), '--replicas', replicas.map((r) => r.port).join(',')], join(dir, 'node-relay.log'));
  await waitPort(write);
  await waitPort(read);
  return { write, read, c };
}

// ---------------------------------------------------------------- PostgreSQL side
interface PgCtx { pg: PgCluster; dir: string; primary: Node; replicas: Node[] }

async function pgSystems(ctx: PgCtx, want: (s: string) => boolean, missing: Set<string>): Promise<System[]> {
  const { dir, primary, replicas } = ctx;
  const out: System[] = [];
  out.push({ name: 'direct', port: primary.port, user: 'app', password: 'app', pid: null, stop: async () => undefined });
  if (want('haproxy') && !missing.has('haproxy')) {
    const h = await startHaproxy(dir, primary, replicas);
    // pgbench -S goes to the read port (replicas), TPC-B to the write port: see runPg.
    out.push({ name: 'haproxy', port: h.read, user: 'app', password: 'app', pid: h.c.pid!, stop: () => stopChild(h.c), ...{ writePort: h.write } });
  }
  if (want('node-relay')) {
    const r = await startNodeRelay(dir, primary, replicas);
    out.push({ name: 'node-relay', port: r.read, user: 'app', password: 'app', pid: r.c.pid!, stop: () => stopChild(r.c), ...{ writePort: r.write } });
  }
  if (want('pgbouncer') && !missing.has('pgbouncer')) {
    const port = await freePort();
    const ini = join(dir, 'pgbouncer.ini');
    writeFileSync(join(dir, 'userlist.txt'), '"app" "app"\n');
    writeFileSync(ini, `[databases]
app = host=127.0.0.1 port=${primary.port} dbname=app
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = ${join(dir, 'userlist.txt')}
pool_mode = transaction
default_pool_size = 20
max_client_conn = 4000
`);
    const c = daemon(which('pgbouncer')!, [ini], join(dir, 'pgbouncer.out'), process.getuid?.() === 0 ? postgresIds() : {});
    await waitPort(port);
    out.push({ name: 'pgbouncer', port, user: 'app', password: 'app', pid: c.pid!, stop: () => stopChild(c) });
  }
  if (want('pgpool') && !missing.has('pgpool2')) {
    const port = await freePort();
    const pcpPort = await freePort();
    const pdir = join(dir, 'pgpool');
    mkdirSync(pdir, { recursive: true });
    const nodes = [primary, ...replicas];
    // The bench cluster trusts `trustuser` from 127.0.0.1 (src/devcluster/pg.ts pg_hba), so Pgpool
    // needs no pool_passwd: clients are trusted by Pgpool (no pool_hba) and it logs in as trustuser.
    writeFileSync(join(pdir, 'pgpool.conf'), `listen_addresses = '127.0.0.1'
port = ${port}
socket_dir = '${pdir}'
pcp_listen_addresses = '127.0.0.1'
pcp_port = ${pcpPort}
pcp_socket_dir = '${pdir}'
backend_clustering_mode = 'streaming_replication'
${nodes.map((n, i) => `backend_hostname${i} = '127.0.0.1'\nbackend_port${i} = ${n.port}\nbackend_weight${i} = ${i === 0 ? 0 : 1}\nbackend_flag${i} = 'ALLOW_TO_FAILOVER'\nbackend_application_name${i} = '${n.name}'`).join('\n')}
load_balance_mode = on
num_init_children = 70
max_pool = 1
enable_pool_hba = off
sr_check_period = 0
health_check_period = 0
failover_on_backend_error = off
pid_file_name = '${join(pdir, 'pgpool.pid')}'
logdir = '${pdir}'
log_min_messages = warning
memory_cache_enabled = off
`);
    writeFileSync(join(pdir, 'pcp.conf'), '');
    const c = daemon(which('pgpool', ['/usr/sbin'])!, ['-n', '-f', join(pdir, 'pgpool.conf'), '-F', join(pdir, 'pcp.conf')], join(pdir, 'pgpool.out'));
    await waitPort(port, 30_000);
    out.push({ name: 'pgpool', port, user: 'trustuser', password: '', pid: c.pid!, stop: () => stopChild(c) });
  }
  if (want('switchyard')) out.push(await startSwitchyard(dir, 'postgres', [primary, ...replicas], 'app'));
  // The --workers target: two worker processes behind one listener.
  if (want('switchyard-w2')) out.push(await startSwitchyard(dir, 'postgres', [primary, ...replicas], 'app', 2));
  return out;
}
function postgresIds(): { uid?: number; gid?: number } {
  const r = runCmd('id', ['-u', 'postgres']);
  const g = runCmd('id', ['-g', 'postgres']);
  return r.code === 0 ? { uid: Number(r.out), gid: Number(g.out) } : {};
}

async function startSwitchyard(dir: string, protocol: 'postgres' | 'mysql', nodes: Node[], db: string, workers = 1): Promise<System> {
  void db;
  const port = await freePort();
  const admin = await freePort();
  const cfg = join(dir, `switchyard-${protocol}.yaml`);
  writeFileSync(cfg, `admin:
  listen: 127.0.0.1:${admin}
log:
  level: warn
limits:
  max_client_connections: 20000
clusters:
  - name: bench
    protocol: ${protocol}
    listen: 127.0.0.1:${port}
    nodes:
${nodes.map((n) => `      - { name: ${n.name}, host: 127.0.0.1, port: ${n.port} }`).join('\n')}
    roles: auto
    users:
      - { name: app, password: app }
    pool:
      mode: transaction
      size: 20
    routing:
      max_replica_lag: { bytes: 64MB, time: 5s }
`);
  const c = daemon(process.execPath, [...(process.env.SWITCHYARD_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), join(ROOT, 'dist', 'cli.js'), 'start', '-c', cfg, '--no-watch', ...(workers > 1 ? ['--workers', String(workers)] : [])], join(dir, `switchyard-${protocol}.log`));
  await waitPort(port, 20_000);
  // Wait for /readyz (topology known).
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${admin}/readyz`).then((r) => r.ok).catch(() => false);
    if (ok) break;
    await sleep(100);
  }
  await sleep(1000);
  return { name: workers > 1 ? `switchyard-w${workers}` : 'switchyard', port, user: 'app', password: 'app', pid: c.pid!, stop: () => stopChild(c) };
}

/**
 * Calls of pgbench -S's statement on every node, from pg_stat_statements, which counts
 * at the end of each statement in shared memory. (pg_stat_database.xact_commit is not
 * used for the split: PostgreSQL 15 backends flush it at most once a second and, going
 * idle within that second, only after 10 s, so one system's commits leaked into the
 * next system's window: "direct" showed 2.1% of its reads on replicas.)
 */
async function selectCalls(pg: PgCluster): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of pg.info.nodes) {
    const rows = await pg.query<{ c: string | null }>(n.name, "SELECT sum(calls)::text AS c FROM pg_stat_statements WHERE query LIKE 'SELECT abalance FROM pgbench_accounts WHERE aid = %'", [], 'app');
    out[n.name] = Number(rows[rows.length - 1]?.c ?? 0);
  }
  return out;
}

/** xact_commit of database app on every node. */
async function commits(pg: PgCluster): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of pg.info.nodes) {
    const rows = await pg.query<{ x: string }>(n.name, "SELECT xact_commit::text AS x FROM pg_stat_database WHERE datname = 'app'");
    out[n.name] = Number(rows[rows.length - 1]?.x ?? 0);
  }
  return out;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function runPgbench(ctx: PgCtx, sys: System & { writePort?: number }, workload: string, clients: number, duration: number): Promise<BenchResult> {
  const logDir = mkdtempSync(join(tmpdir(), 'sy-bench-log-'));
  const port = workload === 'tpcb' && sys.writePort ? sys.writePort : sys.port;
  const args = ['-h', '127.0.0.1', '-p', String(port), '-U', sys.user, '-n', '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(duration), '--log', `--log-prefix=${join(logDir, 'tx')}`];
  if (workload === 'tpcb') args.push('-M', 'simple');
  else args.push('-S', '-M', workload);
  args.push('app');
  const split0 = sys.pid ? cpuSplit(sys.pid) : { user: 0, sys: 0 };
  const before = split0.user + split0.sys;
  const c0 = await commits(ctx.pg);
  const s0 = await selectCalls(ctx.pg);
  const r = runCmd('pgbench', args, { PGPASSWORD: sys.password }, (duration + 120) * 1000);
  const split1 = sys.pid ? cpuSplit(sys.pid) : { user: 0, sys: 0 };
  const after = split1.user + split1.sys;
  await sleep(1500); // backends flush their stats within ~1 s of going idle (PostgreSQL 15)
  const c1 = await commits(ctx.pg);
  const s1 = await selectCalls(ctx.pg);
  // per-transaction latencies (µs) from pgbench's logs
  const lat: number[] = [];
  for (const f of readdirSync(logDir)) {
    for (const line of readFileSync(join(logDir, f), 'utf8').split('\n')) {
      const p = line.split(' ');
      if (p.length >= 3 && p[2] !== 'skipped' && p[2] !== 'failed') lat.push(Number(p[2]));
    }
  }
  rmSync(logDir, { recursive: true, force: true });
  const sorted = Float64Array.from(lat).sort();
  const tps = Number(/tps = ([\d.]+) \((?:without|excluding)/.exec(r.out)?.[1] ?? /tps = ([\d.]+)/.exec(r.out)?.[1] ?? NaN);
  const tx = Number(/number of transactions actually processed: (\d+)/.exec(r.out)?.[1] ?? 0);
  const failed = Number(/number of failed transactions: (\d+)/.exec(r.out)?.[1] ?? 0);
  const ok = r.code === 0 && tx > 0;
  const delta = Object.fromEntries(Object.keys(c1).map((k) => [k, (c1[k] ?? 0) - (c0[k] ?? 0)]));
  const selects = Object.fromEntries(Object.keys(s1).map((k) => [k, (s1[k] ?? 0) - (s0[k] ?? 0)]));
  const reads = Object.entries(selects).filter(([k]) => k !== ctx.primary.name).reduce((a, [, v]) => a + v, 0);
  const total = Object.values(selects).reduce((a, v) => a + v, 0);
  return {
    suite: 'pgbench', workload, system: sys.name, clients, duration_s: duration, ok,
    error: ok ? undefined : (r.err.trim().split('\n').slice(-3).join(' | ') || r.out.trim().split('\n').slice(-3).join(' | ')).slice(0, 400),
    tps: ok ? tps : null,
    transactions: tx,
    failed,
    latency_mean_ms: lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length / 1000 : null,
    latency_p99_ms: lat.length ? percentile(sorted, 99) / 1000 : null,
    proxy_cpu_s_per_1k_tx: sys.pid && tx > 0 ? ((after - before) / tx) * 1000 : null,
    proxy_cpu_sys_share: sys.pid && after > before ? (split1.sys - split0.sys) / (after - before) : null,
    proxy_peak_rss_mb: sys.pid ? peakRssKb(sys.pid) / 1024 : null,
    replica_share: workload === 'tpcb' || total <= 0 ? null : reads / total,
    commits_per_node: delta,
    selects_per_node: selects,
  };
}

// ---------------------------------------------------------------- MySQL side
async function sysbenchSuite(opts: ReturnType<typeof parseArgs>, want: (s: string) => boolean, missing: Set<string>, dir: string, results: BenchResult[], notes: string[]): Promise<void> {
  if (missing.has('sysbench')) { notes.push('sysbench: not installed, skipped'); return; }
  if (!which('mariadbd', ['/usr/sbin'])) { notes.push('sysbench: MariaDB server not installed, skipped'); return; }
  console.log('starting MariaDB primary + 2 replicas ...');
  const maria = await MariaCluster.start({ replicas: 2 });
  const stops: (() => Promise<void>)[] = [];
  try {
    const nodes: Node[] = maria.info.nodes.map((n) => ({ name: n.name, port: n.port, role: n.role }));
    const primary = nodes.find((n) => n.role === 'primary')!;
    const replicas = nodes.filter((n) => n.role !== 'primary');
    const base = ['--db-driver=mysql', '--mysql-host=127.0.0.1', '--mysql-user=app', '--mysql-password=app', '--mysql-db=app', '--tables=4', '--table-size=10000'];
    const prep = runCmd('sysbench', ['oltp_read_write', ...base, `--mysql-port=${primary.port}`, 'prepare']);
    if (prep.code !== 0) { notes.push(`sysbench prepare failed: ${prep.err.slice(0, 300)}`); return; }
    await sleep(2000);
    const systems: (System & { writePort?: number })[] = [{ name: 'direct', port: primary.port, user: 'app', password: 'app', pid: null, stop: async () => undefined }];
    if (want('haproxy') && !missing.has('haproxy')) {
      const h = await startHaproxy(dir, primary, replicas);
      stops.push(() => stopChild(h.c));
      systems.push({ name: 'haproxy', port: h.read, writePort: h.write, user: 'app', password: 'app', pid: h.c.pid!, stop: () => stopChild(h.c) });
    }
    if (want('node-relay')) {
      const r = await startNodeRelay(dir, primary, replicas);
      stops.push(() => stopChild(r.c));
      systems.push({ name: 'node-relay', port: r.read, writePort: r.write, user: 'app', password: 'app', pid: r.c.pid!, stop: () => stopChild(r.c) });
    }
    if (want('switchyard')) {
      // Served only when this build accepts and serves `protocol: mysql` clusters: detect, never fake.
      const probe = await startSwitchyard(dir, 'mysql', nodes, 'app').catch((e: Error) => e);
      if (probe instanceof Error) notes.push(`sysbench through switchyard: not available (protocol: mysql not served by this build: ${probe.message.slice(0, 200)})`);
      else {
        stops.push(probe.stop);
        const t = runCmd('sysbench', ['oltp_point_select', ...base, `--mysql-port=${probe.port}`, '--time=1', '--threads=1', 'run'], {}, 30_000);
        if (t.code !== 0) { notes.push(`sysbench through switchyard: not available (${(t.err || t.out).trim().split('\n').slice(-2).join(' | ').slice(0, 300)})`); await probe.stop(); }
        else systems.push(probe);
      }
    }
    const warmed = new Set<string>();
    for (let rep = 0; rep < opts.repeat; rep++) {
      for (const wl of ['oltp_read_only', 'oltp_read_write']) {
        for (const clients of opts.clients) {
          for (const sys of systems) {
            // HAProxy: the read-only workload uses the read port, read_write the write port (the classic layout).
            const port = wl === 'oltp_read_write' && sys.writePort ? sys.writePort : sys.port;
            if (opts.warmup > 0 && !warmed.has(`${sys.name}:${wl}`)) {
              warmed.add(`${sys.name}:${wl}`);
              runCmd('sysbench', [wl, ...base, `--mysql-port=${port}`, '--threads=8', `--time=${opts.warmup}`, '--report-interval=0', '--mysql-ignore-errors=all', 'run'], {}, (opts.warmup + 120) * 1000);
            }
            const before = sys.pid ? cpuSeconds(sys.pid) : 0;
            const r = runCmd('sysbench', [wl, ...base, `--mysql-port=${port}`, `--threads=${clients}`, `--time=${opts.duration}`, '--percentile=99', '--report-interval=0', '--mysql-ignore-errors=all', 'run'], {}, (opts.duration + 120) * 1000);
            const after = sys.pid ? cpuSeconds(sys.pid) : 0;
            const tx = Number(/transactions:\s+(\d+)/.exec(r.out)?.[1] ?? 0);
            const ok = r.code === 0 && tx > 0;
            results.push({
              suite: 'sysbench', workload: wl, system: sys.name, clients, duration_s: opts.duration, ok, repeat: rep,
              error: ok ? undefined : (r.err || r.out).trim().split('\n').slice(-3).join(' | ').slice(0, 400),
              tps: ok ? Number(/transactions:\s+\d+\s+\(([\d.]+) per sec/.exec(r.out)?.[1]) : null,
              qps: ok ? Number(/queries:\s+\d+\s+\(([\d.]+) per sec/.exec(r.out)?.[1]) : null,
              transactions: tx,
              latency_mean_ms: ok ? Number(/avg:\s+([\d.]+)/.exec(r.out)?.[1]) : null,
              latency_p99_ms: ok ? Number(/99th percentile:\s+([\d.]+)/.exec(r.out)?.[1]) : null,
              proxy_cpu_s_per_1k_tx: sys.pid && tx > 0 ? ((after - before) / tx) * 1000 : null,
              proxy_peak_rss_mb: sys.pid ? peakRssKb(sys.pid) / 1024 : null,
              replica_share: null,
            });
            const last = results[results.length - 1]!;
            console.log(`  ${wl} c=${clients} ${sys.name}: ${ok ? `${last.tps?.toFixed(0)} tps ${last.qps?.toFixed(0)} qps` : `FAILED ${last.error}`}`);
          }
        }
      }
    }
  } finally {
    for (const s of stops) await s().catch(() => undefined);
    await maria.stopAll().catch(() => undefined);
  }
}

// ---------------------------------------------------------------- main
async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const wantW = (w: string) => !opts.only || opts.only.includes(w);
  const wantS = (s: string) => !opts.systems || opts.systems.includes(s);
  const missing = new Set<string>();
  for (const [pkg, bin] of [['haproxy', 'haproxy'], ['pgbouncer', 'pgbouncer'], ['pgpool2', 'pgpool'], ['sysbench', 'sysbench']] as const) if (!which(bin)) missing.add(pkg);
  if (missing.size) console.log(`missing Debian packages (run scripts/install-bench-deps.sh): ${[...missing].join(', ')}; those systems are skipped`);
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) throw new Error('dist/cli.js missing: run npm run build');
  mkdirSync(RESULTS_DIR, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'sy-bench-'));
  if (process.getuid?.() === 0) spawnSync('chmod', ['755', dir]);
  const results: BenchResult[] = [];
  const notes: string[] = [];
  const started = new Date().toISOString();
  const loadAtStart = Math.round(loadavg()[0]! * 100) / 100;
  const pgWorkloads = ['simple', 'extended', 'prepared', 'tpcb'].filter(wantW);
  let pg: PgCluster | null = null;
  const systems: System[] = [];
  const cleanup = async () => {
    for (const s of systems) await s.stop().catch(() => undefined);
    for (const c of children) await stopChild(c);
    await pg?.stopAll().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    if (pgWorkloads.length || wantW('memory')) {
      console.log('starting PostgreSQL primary + 2 replicas ...');
      pg = await PgCluster.start({ replicas: 2 });
      const nodes: Node[] = pg.info.nodes.map((n) => ({ name: n.name, port: n.port, role: n.role }));
      const ctx: PgCtx = { pg, dir, primary: nodes.find((n) => n.role === 'primary')!, replicas: nodes.filter((n) => n.role === 'replica') };
      if (pgWorkloads.length) {
        const init = runCmd('pgbench', ['-h', '127.0.0.1', '-p', String(ctx.primary.port), '-U', 'app', '-i', '-s', '10', '-q', 'app'], { PGPASSWORD: 'app' });
        if (init.code !== 0) throw new Error(`pgbench -i: ${init.err}`);
        await pg.query('pg0', 'GRANT ALL ON ALL TABLES IN SCHEMA public TO trustuser', [], 'app');
        await pg.waitForReplication();
        systems.push(...(await pgSystems(ctx, wantS, missing)));
        const active = systems.filter((s) => wantS(s.name));
        const warmed = new Set<string>();
        console.log(`systems: ${active.map((s) => s.name).join(', ')}; ${cpus().length} CPUs; duration ${opts.duration}s x ${opts.repeat}`);
        for (const wl of pgWorkloads) {
          for (const clients of opts.clients) {
            for (let rep = 0; rep < opts.repeat; rep++) {
              // A B A B: every system once per round, rounds repeated.
              for (const sys of active) {
                if (opts.warmup > 0 && !warmed.has(`${sys.name}:${wl}`)) {
                  warmed.add(`${sys.name}:${wl}`);
                  await runPgbench(ctx, sys, wl, 8, opts.warmup);
                }
                const r = await runPgbench(ctx, sys, wl, clients, opts.duration);
                r.repeat = rep;
                results.push(r);
                console.log(`  ${wl} c=${clients} #${rep} ${sys.name}: ${r.ok ? `${r.tps?.toFixed(0)} tps mean ${r.latency_mean_ms?.toFixed(3)} ms p99 ${r.latency_p99_ms?.toFixed(3)} ms${r.proxy_cpu_s_per_1k_tx != null ? ` cpu/1k ${r.proxy_cpu_s_per_1k_tx.toFixed(3)} s` : ''}${r.proxy_cpu_sys_share != null ? ` (kernel ${(r.proxy_cpu_sys_share * 100).toFixed(0)}%)` : ''}${r.replica_share != null ? ` replicas ${(r.replica_share * 100).toFixed(1)}%` : ''}` : `FAILED: ${r.error}`}`);
              }
            }
          }
        }
      }
      if (wantW('memory')) {
        const sy = systems.find((s) => s.name === 'switchyard') ?? (await startSwitchyard(dir, 'postgres', [ctx.primary, ...ctx.replicas], 'app'));
        if (!systems.includes(sy)) systems.push(sy);
        const m = await runMemoryBench({ port: sy.port, pid: sy.pid!, connections: Number(process.env.BENCH_MEMORY_CONNECTIONS ?? 10_000) });
        results.push({ suite: 'memory', workload: 'idle_connections', system: 'switchyard', clients: m.connections, duration_s: 0, ok: m.ok, error: m.error, tps: null, transactions: 0, latency_mean_ms: null, latency_p99_ms: null, proxy_cpu_s_per_1k_tx: null, proxy_peak_rss_mb: m.rssAfterKb / 1024, replica_share: null, memory: m });
        console.log(`  memory: ${m.connections} idle logged-in connections: RSS ${(m.rssBeforeKb / 1024).toFixed(1)} -> ${(m.rssAfterKb / 1024).toFixed(1)} MB = ${m.perConnKb.toFixed(2)} kB each${m.error ? ` (${m.error})` : ''}`);
      }
      for (const s of systems) await s.stop().catch(() => undefined);
      systems.length = 0;
      await pg.stopAll();
      pg = null;
    }
    if (wantW('sysbench')) {
      await sysbenchSuite(opts, wantS, missing, dir, results, notes).catch((e: Error) => {
        notes.push(`sysbench: not run: ${e.message.split('\n')[0]!.slice(0, 300)}`);
        console.log(`sysbench failed: ${e.message.split('\n')[0]}`);
      });
    }
  } finally {
    await cleanup();
  }
  const suite: SuiteResults = { name: opts.name, started, finished: new Date().toISOString(), cpus: cpus().length, cpu_model: cpus()[0]?.model ?? '', node: process.version, options: { duration_s: opts.duration, warmup_s: opts.warmup, repeat: opts.repeat, clients: opts.clients, only: opts.only, systems: opts.systems }, missing: [...missing], notes, load_at_start: loadAtStart, results };
  writeFileSync(join(RESULTS_DIR, `${opts.name}.json`), JSON.stringify(suite, null, 1) + '\n');
  writeFileSync(join(ROOT, 'bench', 'RESULTS.md'), renderResults(RESULTS_DIR));
  console.log(`wrote bench/results/${opts.name}.json and bench/RESULTS.md`);
}

main().catch((e) => {
  console.error(e);
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
});
