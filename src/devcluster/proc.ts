import { execFile, spawn, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';

/*
 * Process helpers for the local clusters that `switchyard demo` and the tests
 * start from the machine's own server binaries.
 */

const exec = promisify(execFile);

/** The uid/gid to run PostgreSQL as: itself when not root, the `postgres` user when root. */
export interface RunAs {
  uid?: number;
  gid?: number;
}

export async function runAsFor(user: string): Promise<RunAs> {
  if (process.getuid?.() !== 0) return {};
  const uid = Number((await exec('id', ['-u', user])).stdout.trim());
  const gid = Number((await exec('id', ['-g', user])).stdout.trim());
  return { uid, gid };
}

export async function run(cmd: string, args: string[], as: RunAs = {}, env: NodeJS.ProcessEnv = {}): Promise<string> {
  try {
    const r = await exec(cmd, args, { ...as, env: { ...process.env, LC_ALL: 'C', ...env }, maxBuffer: 16 << 20 });
    return r.stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr?.trim() || err.message}`);
  }
}

/** Starts a long-running server process detached from our stdio; returns its pid. */
export function spawnServer(cmd: string, args: string[], as: RunAs = {}, logFile?: number): number {
  const opts: SpawnOptions = { ...as, detached: true, stdio: ['ignore', logFile ?? 'ignore', logFile ?? 'ignore'] };
  const child = spawn(cmd, args, opts);
  child.unref();
  if (!child.pid) throw new Error(`cannot start ${cmd}`);
  return child.pid;
}

/** Finds a server binary: the first candidate path that exists, else the name on PATH. */
export function findBinary(name: string, dirs: string[]): string {
  for (const d of dirs) {
    const p = `${d}/${name}`;
    if (existsSync(p)) return p;
  }
  for (const d of (process.env.PATH ?? '').split(':')) {
    if (d && existsSync(`${d}/${name}`)) return `${d}/${name}`;
  }
  throw new Error(`${name} not found (looked in ${dirs.join(', ')} and PATH): install Debian's server packages (scripts/install-deps.sh)`);
}

/**
 * Free TCP ports on 127.0.0.1, never the same one twice in this process.
 *
 * Picked below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 on
 * Debian), not by binding port 0: a port from that range is free only until some client's
 * outgoing connection takes it as its source port, and then a server restarted on it (a chaos
 * test's `pg_ctl start` after kill -9) fails with "Address already in use". Seen in CI.
 */
const handedOut = new Set<number>();
const PORT_LOW = 20_000;
const PORT_HIGH = ephemeralLow() - 1;

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > PORT_LOW + 1000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW + 1));
    if (handedOut.has(port)) continue;
    if (await canBind(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${PORT_LOW}-${PORT_HIGH}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Retries `fn` until it resolves or `timeoutMs` passes; rethrows the last error. */
export async function until<T>(fn: () => Promise<T>, timeoutMs: number, what: string, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not done within ${timeoutMs}ms: ${(last as Error)?.message ?? last}`);
    await sleep(stepMs);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after graceMs if still alive. */
export async function terminate(pid: number, graceMs = 5000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    while (isAlive(pid)) await sleep(20);
  }
}

/**
 * Runs `fn` while holding a lock shared by every process of the machine (a
 * directory made with mkdir, which is atomic). A lock older than `staleMs` is
 * taken over: its holder died. Used where two processes must not run a tool
 * side by side (mariadb-install-db bootstraps fail when they do).
 */
export async function withMachineLock<T>(path: string, fn: () => Promise<T>, staleMs = 120_000, waitMs = 300_000): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      mkdirSync(path);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        if (Date.now() - statSync(path).mtimeMs > staleMs) rmSync(path, { recursive: true, force: true });
      } catch {
        // removed meanwhile by its holder: try again
      }
      if (Date.now() > deadline) throw new Error(`lock ${path} not free within ${waitMs}ms`);
      await sleep(100 + Math.floor(Math.random() * 100));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}
