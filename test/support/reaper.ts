import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive } from '../../src/devcluster/proc.js';

/*
 * No server may outlive the test run that started it. Every cluster a test
 * process starts lives in a base dir claimed here, which
 *   - carries `servers.json` (the owning pid, then the server pids), so the
 *     next run can clean up after a run that was SIGKILLed;
 *   - is remembered until stopAll() releases it, so an `exit`, SIGINT or
 *     SIGTERM of this process kills its servers synchronously.
 * Server pids always come from the pid files inside the dir, so a node that a
 * test restarted (new pid) is still found.
 */

export const SERVERS_FILE = 'servers.json';
const CLUSTER_DIR_PREFIXES = ['switchyard-pg-', 'switchyard-maria-'];
const SERVER_COMMANDS = /postgres|mariadbd/;

interface ServersRecord {
  owner: number;
  pids: number[];
}

const claimed = new Set<string>();
let armed = false;

/** Creates a fresh base dir in the temp dir for a cluster this process starts and watches it. */
export function claimBaseDir(prefix: 'switchyard-pg-' | 'switchyard-maria-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeServersRecord(dir, []);
  claimed.add(dir);
  arm();
  return dir;
}

/** The cluster stopped and removed its dir itself: nothing left to reap. */
export function releaseBaseDir(dir: string): void {
  claimed.delete(dir);
}

export function writeServersRecord(dir: string, pids: readonly number[]): void {
  const record: ServersRecord = { owner: process.pid, pids: [...pids] };
  writeFileSync(join(dir, SERVERS_FILE), JSON.stringify(record));
}

/** Pids in `<dir>/<node>/postmaster.pid` (PostgreSQL) and `<dir>/<node>.pid` (MariaDB) that run a server. */
export function serverPidsIn(dir: string): number[] {
  const files: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  for (const e of entries) {
    if (e.endsWith('.pid')) files.push(join(dir, e));
    else if (existsSync(join(dir, e, 'postmaster.pid'))) files.push(join(dir, e, 'postmaster.pid'));
  }
  const pids = files.map((f) => Number(readFileSync(f, 'utf8').split('\n')[0]?.trim()));
  return pids.filter((p) => Number.isInteger(p) && p > 0 && isServerProcess(p));
}

/** The command line of a running process, or null when there is none. */
function commandOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return null;
  }
}

/** Only pids that still run a database server: a recycled pid must survive. */
function isServerProcess(pid: number): boolean {
  return SERVER_COMMANDS.test(commandOf(pid) ?? '');
}

/**
 * Ends servers at once, synchronously: SIGQUIT to a postmaster (PostgreSQL's
 * immediate shutdown, which also ends its backends), SIGKILL to mariadbd.
 */
function signalServers(pids: readonly number[]): void {
  for (const pid of pids) {
    const command = commandOf(pid);
    if (command === null || !SERVER_COMMANDS.test(command)) continue;
    try {
      process.kill(pid, command.includes('mariadbd') ? 'SIGKILL' : 'SIGQUIT');
    } catch {
      // Already gone.
    }
  }
}

function reapNow(dir: string): void {
  signalServers(serverPidsIn(dir));
  rmSync(dir, { recursive: true, force: true });
}

function reapClaimed(): void {
  for (const dir of claimed) {
    try {
      reapNow(dir);
    } catch {
      // Best effort: the next run's cleanLeftovers() gets what is left.
    }
  }
  claimed.clear();
}

/**
 * Once per process: reap on `exit`; on SIGINT/SIGTERM reap, then leave the
 * exit to whoever else listens (vitest does) or exit as the default would.
 */
function arm(): void {
  if (armed) return;
  armed = true;
  process.once('exit', reapClaimed);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      reapClaimed();
      if (process.listenerCount(signal) === 0) process.exit(code);
    });
  }
}

/**
 * Cleans what earlier, killed runs left behind:
 *   1. cluster dirs in the temp dir that carry a servers record (dirs without
 *      one belong to `switchyard demo`);
 *   2. whose owner process is gone (a run still going keeps its servers);
 *   3. get their servers killed and the dir removed.
 * Returns how many dirs were cleaned.
 */
export function cleanLeftovers(): number {
  let cleaned = 0;
  for (const entry of readdirSync(tmpdir())) {
    if (!CLUSTER_DIR_PREFIXES.some((p) => entry.startsWith(p))) continue;
    const dir = join(tmpdir(), entry);
    const file = join(dir, SERVERS_FILE);
    if (!existsSync(file) || !statSync(dir).isDirectory()) continue;
    let record: ServersRecord;
    try {
      record = JSON.parse(readFileSync(file, 'utf8')) as ServersRecord;
    } catch {
      continue;
    }
    if (isAlive(record.owner)) continue;
    signalServers([...new Set([...record.pids, ...serverPidsIn(dir)])]);
    rmSync(dir, { recursive: true, force: true });
    cleaned++;
  }
  return cleaned;
}
