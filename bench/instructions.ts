/**
 * CPU instructions switchyard executes per transaction, counted by Valgrind
 * (cachegrind, user space only), so the figure does not depend on what else the
 * machine runs: on a shared 2-core machine TPS moves by 30% between runs, an
 * instruction count by well under 1%.
 *
 *   tsx bench/instructions.ts [--tx 3000] [--modes simple,extended,prepared] [--name instructions] [--peer-only]
 *
 * For each pgbench mode:
 *   1. run the proxy (dist/cli.js, single-threaded V8) under cachegrind twice,
 *      once for a short (N/3) and once for a long (N) `pgbench -S -c 1 -t` run;
 *   2. per transaction = (Ir(long) - Ir(short)) / (long - short): start-up and most
 *      JIT warm-up cancel out. Optimising compiles that land in one run only still
 *      move the figure by up to about 10,000 instructions between runs: compare
 *      runs of the same script, and repeat when a change is smaller than that;
 *   3. print the functions whose count grew most per transaction (V8 builtins, GC
 *      and libuv by name; JIT-compiled JavaScript shows as ???).
 * PgBouncer and bench/node-relay.mjs (the floor of a Node.js proxy: bytes relayed, nothing
 * parsed) are measured the same way after each mode (--peer-only: only those two).
 * Kernel work (the socket syscalls themselves) is not counted: see `syscalls` in the
 * output, counted with strace over a plain (not Valgrind) run of 5x as many transactions.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { PgCluster } from '../src/devcluster/pg.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
// SWITCHYARD_DIST measures another build (e.g. a worktree of an older commit) with this script.
const DIST = process.env.SWITCHYARD_DIST ?? join(ROOT, 'dist');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves when `child` has exited, also when it already had (an 'exit' listener added late never fires). */
const exited = (child: ChildProcess) =>
  new Promise<void>((res) => (child.exitCode !== null || child.signalCode !== null ? res() : child.once('exit', () => res())));

function args() {
  const o = { tx: 3000, modes: ['simple', 'extended', 'prepared'], name: 'instructions', peerOnly: false };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--tx') o.tx = Number(a[++i]);
    else if (a[i] === '--modes') o.modes = a[++i]!.split(',');
    else if (a[i] === '--name') o.name = a[++i]!;
    else if (a[i] === '--peer-only') o.peerOnly = true;
  }
  return o;
}

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

async function waitReady(adminPort: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fetch(`http://127.0.0.1:${adminPort}/readyz`).then((r) => r.ok).catch(() => false)) return;
    await sleep(250);
  }
  throw new Error(`proxy not ready within ${timeoutMs} ms`);
}

function config(port: number, admin: number, nodes: { name: string; port: number }[]): string {
  return `admin:
  listen: 127.0.0.1:${admin}
log:
  level: warn
clusters:
  - name: bench
    protocol: postgres
    listen: 127.0.0.1:${port}
    nodes:
${nodes.map((n) => `      - { name: ${n.name}, host: 127.0.0.1, port: ${n.port} }`).join('\n')}
    roles: auto
    users:
      - { name: app, password: app }
    pool:
      size: 4
      idle_timeout: 10m
    # Health checks run by the clock, and under Valgrind a run lasts minutes: a slow interval
    # keeps their work (not per transaction) out of the count.
    health: { interval: 5s, timeout: 4s }
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

/**
 * Per transaction, the instructions V8's parser, bytecode generator and optimising compilers
 * (on the main thread under --single-threaded) spent in the long run beyond the short one: warm-up that one run
 * happened to do and the other did not, and the main source of the figure's run-to-run spread.
 */
function compilerPerTx(short: Map<string, number>, long: Map<string, number>, dTx: number): number {
  let sum = 0;
  for (const [fn, ir] of long) if (/v8::internal::compiler::|v8::internal::maglev::|v8::internal::Parser|v8::internal::interpreter::BytecodeGenerator/.test(fn)) sum += ir - (short.get(fn) ?? 0);
  return Math.round(sum / dTx);
}

/** Per transaction, the functions whose instruction count grew most from the short to the long run. */
function topPerTx(short: Map<string, number>, long: Map<string, number>, dTx: number): { ir_per_tx: number; fn: string }[] {
  return [...long.entries()]
    .map(([fn, ir]) => ({ fn, ir_per_tx: Math.round((ir - (short.get(fn) ?? 0)) / dTx) }))
    .sort((a, b) => b.ir_per_tx - a.ir_per_tx)
    .slice(0, 25);
}

async function measure(dir: string, nodes: { name: string; port: number }[], mode: string, tx: number, strace: boolean, valgrind = true) {
  const port = await freePort();
  const admin = await freePort();
  const cfg = join(dir, `sy-${mode}-${tx}.yaml`);
  writeFileSync(cfg, config(port, admin, nodes));
  const out = join(dir, `cg-${mode}-${tx}.out`);
  const nodeArgs = [process.execPath, '--single-threaded', join(DIST, 'cli.js'), 'start', '-c', cfg, '--no-watch'];
  const child: ChildProcess = valgrind
    ? spawn('valgrind', ['--tool=cachegrind', '--cache-sim=no', `--cachegrind-out-file=${out}`, ...nodeArgs], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(nodeArgs[0]!, nodeArgs.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  try {
    await waitReady(admin, 180_000);
    const env = { ...process.env, PGPASSWORD: 'app' };
    const pgbenchArgs = ['-h', '127.0.0.1', '-p', String(port), '-U', 'app', '-n', '-S', '-M', mode, '-c', '1', '-t', String(tx), 'app'];
    let syscalls: Record<string, number> | null = null;
    let tracer: ChildProcess | null = null;
    const straceOut = join(dir, `strace-${mode}-${tx}.txt`);
    if (strace) {
      tracer = spawn('strace', ['-f', '-c', '-o', straceOut, '-p', String(child.pid)], { stdio: 'ignore' });
      await sleep(1000);
    }
    const r = spawnSync('pgbench', pgbenchArgs, { env, encoding: 'utf8', timeout: 1_800_000 });
    if (r.status !== 0) throw new Error(`pgbench: ${r.stderr}`);
    if (tracer) {
      tracer.kill('SIGINT');
      await exited(tracer);
      syscalls = {};
      for (const line of readFileSync(straceOut, 'utf8').split('\n')) {
        const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$/.exec(line);
        if (m && m[2] !== 'total') syscalls[m[2]!] = Number(m[1]);
      }
    }
    child.kill('SIGTERM');
    await exited(child);
    return { ...(valgrind ? readCachegrind(out) : { total: NaN, byFn: new Map<string, number>() }), syscalls };
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${(e as Error).message}\n${stderr.slice(-2000)}`);
  }
}

/**
 * The same two-run difference for another process in front of the cluster: `start` spawns it
 * (under Valgrind) for a run of `n` transactions and says which port pgbench connects to.
 */
async function twoRunDifference(mode: string, tx: number, start: (n: number) => Promise<{ child: ChildProcess; port: number; out: string }>): Promise<number | null> {
  const totals: number[] = [];
  for (const n of [Math.round(tx / 3), tx]) {
    const { child, port, out } = await start(n);
    for (let i = 0; i < 120; i++) {
      const up = await new Promise<boolean>((res) => net.connect(port, '127.0.0.1').once('connect', function (this: net.Socket) { this.destroy(); res(true); }).once('error', () => res(false)));
      if (up) break;
      await sleep(250);
    }
    const r = spawnSync('pgbench', ['-h', '127.0.0.1', '-p', String(port), '-U', 'app', '-n', '-S', '-M', mode, '-c', '1', '-t', String(n), 'app'], { env: { ...process.env, PGPASSWORD: 'app' }, encoding: 'utf8', timeout: 1_800_000 });
    child.kill('SIGTERM');
    await exited(child);
    if (r.status !== 0) return null;
    totals.push(readCachegrind(out).total);
  }
  return (totals[1]! - totals[0]!) / (tx - Math.round(tx / 3));
}

/**
 * PgBouncer (transaction pooling, every query to the primary), the C pooler the issue
 * compares CPU per transaction with.
 */
async function measurePgbouncer(dir: string, primaryPort: number, mode: string, tx: number): Promise<number | null> {
  const bin = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((b) => spawnSync(b, ['--version']).status === 0);
  if (!bin) return null;
  // PgBouncer refuses to run as root: run it as postgres, in a directory it may write.
  const ids = process.getuid?.() === 0 ? { uid: Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout), gid: Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout) } : {};
  return twoRunDifference(mode, tx, async (n) => {
    const pdir = join(dir, `pgbouncer-${mode}-${n}`);
    mkdirSync(pdir, { recursive: true });
    const port = await freePort();
    writeFileSync(join(pdir, 'userlist.txt'), '"app" "app"\n');
    writeFileSync(join(pdir, 'pgbouncer.ini'), `[databases]\napp = host=127.0.0.1 port=${primaryPort} dbname=app\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = ${port}\nunix_socket_dir =\nauth_type = scram-sha-256\nauth_file = ${join(pdir, 'userlist.txt')}\npool_mode = transaction\ndefault_pool_size = 4\n`);
    if (ids.uid !== undefined) spawnSync('chown', ['-R', `${ids.uid}:${ids.gid}`, pdir]);
    // The output file goes in the directory PgBouncer's user may write.
    const child = spawn('valgrind', ['--tool=cachegrind', '--cache-sim=no', `--cachegrind-out-file=${join(pdir, 'cg.out')}`, bin, join(pdir, 'pgbouncer.ini')], { stdio: 'ignore', ...ids });
    return { child, port, out: join(pdir, 'cg.out') };
  });
}

/**
 * bench/node-relay.mjs: the floor of a Node.js proxy (bytes relayed, nothing parsed), on the
 * same single-threaded V8 as the proxy's own measurement.
 */
async function measureRelay(dir: string, nodes: { port: number }[], mode: string, tx: number): Promise<number | null> {
  return twoRunDifference(mode, tx, async (n) => {
    const write = await freePort();
    const read = await freePort();
    const out = join(dir, `cg-relay-${mode}-${n}.out`);
    const child = spawn('valgrind', ['--tool=cachegrind', '--cache-sim=no', `--cachegrind-out-file=${out}`, process.execPath, '--single-threaded', join(ROOT, 'bench', 'node-relay.mjs'), '--write', String(write), '--read', String(read), '--primary', String(nodes[0]!.port), '--replicas', nodes.slice(1).map((x) => x.port).join(',')], { stdio: 'ignore' });
    return { child, port: read, out };
  });
}

async function main() {
  const o = args();
  const dir = mkdtempSync(join(tmpdir(), 'sy-instr-'));
  // PgBouncer runs as postgres (it refuses root) and writes its Valgrind output below this directory.
  if (process.getuid?.() === 0) spawnSync('chmod', ['755', dir]);
  const pg = await PgCluster.start({ replicas: 2 });
  const hasStrace = spawnSync('strace', ['-V']).status === 0;
  try {
    const primary = pg.info.nodes[0]!;
    const init = spawnSync('pgbench', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'app', '-i', '-s', '1', '-q', 'app'], { env: { ...process.env, PGPASSWORD: 'app' }, encoding: 'utf8' });
    if (init.status !== 0) throw new Error(`pgbench -i: ${init.stderr}`);
    await sleep(1000); // replicas replay the init
    const nodes = pg.info.nodes.map((n) => ({ name: n.name, port: n.port }));
    const results = [];
    for (const mode of o.modes) {
      if (o.peerOnly) {
        const b = await measurePgbouncer(dir, pg.info.nodes[0]!.port, mode, o.tx);
        const relay = await measureRelay(dir, nodes, mode, o.tx);
        console.log(`pgbench -S -M ${mode} -c 1 through PgBouncer: ${b === null ? 'not measured' : Math.round(b).toLocaleString('en')} instructions per transaction; Node relay: ${relay === null ? 'not measured' : Math.round(relay).toLocaleString('en')}`);
        results.push({ workload: `pgbench -S -M ${mode}`, clients: 1, transactions: o.tx, pgbouncer_instructions_per_tx: b === null ? null : Math.round(b), node_relay_instructions_per_tx: relay === null ? null : Math.round(relay) });
        continue;
      }
      const short = await measure(dir, nodes, mode, Math.round(o.tx / 3), false);
      const long = await measure(dir, nodes, mode, o.tx, false);
      const dTx = o.tx - Math.round(o.tx / 3);
      const perTx = (long.total - short.total) / dTx;
      const top = topPerTx(short.byFn, long.byFn, dTx);
      const compiling = compilerPerTx(short.byFn, long.byFn, dTx);
      // Syscalls are counted on a plain (not Valgrind) run: Valgrind makes syscalls of its own.
      const traced = hasStrace ? await measure(dir, nodes, mode, o.tx * 5, true, false) : null;
      const syscallsPerTx = traced?.syscalls ? Object.fromEntries(Object.entries(traced.syscalls).filter(([, v]) => v / (o.tx * 5) >= 0.01).map(([k, v]) => [k, Math.round((v / (o.tx * 5)) * 100) / 100])) : null;
      const bouncer = await measurePgbouncer(dir, pg.info.nodes[0]!.port, mode, o.tx);
      const relay = await measureRelay(dir, nodes, mode, o.tx);
      console.log(`pgbench -S -M ${mode} -c 1: ${Math.round(perTx).toLocaleString('en')} instructions per transaction (user space; ${compiling.toLocaleString('en')} of them compiling); PgBouncer: ${bouncer === null ? 'not measured' : Math.round(bouncer).toLocaleString('en')}; Node relay: ${relay === null ? 'not measured' : Math.round(relay).toLocaleString('en')}`);
      if (syscallsPerTx) console.log(`  syscalls per transaction: ${JSON.stringify(syscallsPerTx)}`);
      for (const t of top.slice(0, 20)) console.log(`  ${String(t.ir_per_tx).padStart(8)}  ${t.fn.slice(0, 150)}`);
      results.push({ workload: `pgbench -S -M ${mode}`, clients: 1, transactions: o.tx, instructions_per_tx: Math.round(perTx), compiler_instructions_per_tx: compiling, pgbouncer_instructions_per_tx: bouncer === null ? null : Math.round(bouncer), node_relay_instructions_per_tx: relay === null ? null : Math.round(relay), syscalls_per_tx: syscallsPerTx, top_functions_per_tx: top });
    }
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    const file = join(ROOT, 'bench', 'results', `${o.name}.json`);
    writeFileSync(file, JSON.stringify({ when: new Date().toISOString(), node: process.version, cpus: cpus().length, results }, null, 2) + '\n');
    console.log(`wrote ${file}`);
  } finally {
    await pg.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
