import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { RunningProxy } from '../support/proxy.js';
import { PROBE_USER, delta, nodeCounters, prepareProbeUser, startMysqlProxy } from './mysql-proxy-support.js';

/**
 * sysbench (Debian package; libmariadb, server-side prepared statements by
 * default) through the MySQL proxy: oltp_read_write and oltp_read_only, 8
 * threads, 10 s each, read-only both inside transactions (sysbench's default)
 * and without (--skip_trx). Every run must end without an error reaching
 * sysbench: the only errors it may retry are the server's deadlock (1213) and
 * lock wait timeout (1205), which concurrent read-write transactions get from
 * MariaDB directly too; anything else (a lost connection, a protocol error)
 * fails the run. Read-only runs must have none at all, and without
 * transactions they must reach the replicas, checked at the backends.
 */
const run = promisify(execFile);
const info = inject('mariaCluster');
let proxy: RunningProxy;

const common = () => [
  '--db-driver=mysql',
  '--mysql-host=127.0.0.1',
  `--mysql-port=${proxy.port}`,
  `--mysql-user=${PROBE_USER.user}`,
  `--mysql-password=${PROBE_USER.password}`,
  '--mysql-db=app',
  '--tables=4',
  '--table-size=5000',
  '--mysql-ignore-errors=1213,1205',
];

async function sysbench(test: string, extra: string[]): Promise<{ transactions: number; errors: number; out: string }> {
  const { stdout } = await run('sysbench', [test, ...common(), ...extra], { timeout: 120_000, maxBuffer: 16 << 20 });
  const transactions = Number(/transactions:\s+(\d+)/.exec(stdout)?.[1] ?? NaN);
  const errors = Number(/ignored errors:\s+(\d+)/.exec(stdout)?.[1] ?? NaN);
  return { transactions, errors, out: stdout };
}

beforeAll(async () => {
  await prepareProbeUser(info);
  proxy = await startMysqlProxy(info);
  await run('sysbench', ['oltp_read_write', ...common(), 'cleanup'], { timeout: 60_000 });
  await run('sysbench', ['oltp_read_write', ...common(), 'prepare'], { timeout: 120_000 });
});

afterAll(async () => {
  if (proxy) await run('sysbench', ['oltp_read_write', ...common(), 'cleanup'], { timeout: 60_000 }).catch(() => undefined);
  await proxy?.stop();
});

describe('sysbench through the MySQL proxy', () => {
  it('oltp_read_write, 8 threads, 10 s: no error but retried deadlocks', async () => {
    // execFile rejects when sysbench exits non-zero, i.e. on any error not in --mysql-ignore-errors.
    const r = await sysbench('oltp_read_write', ['--threads=8', '--time=10', 'run']);
    console.log(`[sysbench] oltp_read_write: ${r.transactions} transactions, ${r.errors} retried deadlocks/lock waits in 10 s`);
    expect(r.errors).toBeLessThan(r.transactions);
    expect(r.transactions).toBeGreaterThan(0);
  });

  it('oltp_read_only in transactions (sysbench default), 8 threads, 10 s: 0 errors', async () => {
    const r = await sysbench('oltp_read_only', ['--threads=8', '--time=10', 'run']);
    console.log(`[sysbench] oltp_read_only (transactions): ${r.transactions} transactions, ${r.errors} errors in 10 s`);
    expect(r.errors).toBe(0);
    expect(r.transactions).toBeGreaterThan(0);
  });

  it('oltp_read_only without transactions (--skip_trx), 8 threads, 10 s: 0 errors, reads on the replicas only', async () => {
    const before = await nodeCounters(info);
    const r = await sysbench('oltp_read_only', ['--threads=8', '--time=10', '--skip_trx=on', 'run']);
    const after = await nodeCounters(info);
    const sel = delta(before, after, 'userSelects');
    console.log(`[sysbench] oltp_read_only --skip_trx: ${r.transactions} transactions, ${r.errors} errors in 10 s; selects per node ${JSON.stringify(sel)}`);
    expect(r.errors).toBe(0);
    expect(r.transactions).toBeGreaterThan(0);
    expect(sel.my0).toBe(0);
    expect(sel.my1).toBeGreaterThan(0);
    expect(sel.my2).toBeGreaterThan(0);
  });
});
