import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { MariaCluster } from '../support/mariadb-cluster.js';
import { replicaEligibility } from '../../src/routing/eligibility.js';
import { gtidCovers, parseMariaGtidPos } from '../../src/topology/gtid.js';
import { firstSeen, until, watch, type Watched } from './topology-mysql-support.js';

/**
 * MysqlTopologyMonitor against nodes that stop, hang and get promoted. These
 * tests break their cluster, so they start their own (my0 primary, my1 and my2
 * GTID replicas) and never touch the shared one.
 */
const INTERVAL = 100;
const TIMEOUT = 500;
const FALL = 3;

let cluster: MariaCluster;
let w: Watched;

beforeAll(async () => {
  cluster = await MariaCluster.start({ replicas: 2 });
  w = watch(cluster.info, { interval: `${INTERVAL}ms`, timeout: `${TIMEOUT}ms`, fall: FALL, rise: 2, user: 'superuser' });
  // Version 0 is the placeholder (all up, roles from the config): wait for rounds that probed every node.
  await until(() => w.snap().version > 3 && w.snap().primary === 'my0' && w.snap().nodes.every((n) => n.up && n.role !== 'unknown' && n.replayGtid), 10_000, 'first rounds');
}, 120_000);

afterAll(async () => {
  w?.stop();
  // A node left stopped by a failed test must not stay frozen for stopAll.
  for (const n of cluster?.info.nodes ?? []) {
    const pid = cluster.pid(n.name);
    if (pid) process.kill(pid, 'SIGCONT');
  }
  await cluster?.stopAll();
}, 60_000);

const up = (name: string) => w.node(name).up;

async function primaryConn(node: string): Promise<mysql.Connection> {
  return mysql.createConnection({ ...cluster.connectionInfo(node, 'superuser'), database: undefined });
}

describe('health', () => {
  it('a stopped node goes down within one check of refusing connections, and comes back after rise checks', async () => {
    // mariadbd refuses new connections as soon as its shutdown starts, so time from the stop request.
    const stoppedAt = Date.now();
    await cluster.stop('my2');
    await until(() => !up('my2'), 10_000, 'my2 down');
    const down = firstSeen(w, stoppedAt, (s) => !s.nodes.find((n) => n.name === 'my2')!.up)!;
    console.log(`MariaDB: stopped node marked down ${down.at - stoppedAt}ms after its shutdown was requested (interval ${INTERVAL}ms)`);
    // Refused connections count as `fall` failures at once: one round, plus the round in flight.
    expect(down.at - stoppedAt).toBeLessThanOrEqual(2 * INTERVAL + 50);
    expect(w.snap().primary).toBe('my0');
    await cluster.start('my2');
    const back = await until(() => up('my2') && w.node('my2').role === 'replica', 30_000, 'my2 back');
    console.log(`MariaDB: restarted node up again ${back}ms after it accepted connections (rise 2)`);
  }, 60_000);

  it('a hung node (SIGSTOP: accepts TCP, never answers) is caught by the timeout', async () => {
    const pid = cluster.pid('my2')!;
    const v0 = w.snap().version;
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    try {
      await until(() => !up('my2'), 10_000, 'hung my2 down');
      const ms = Date.now() - stoppedAt;
      const rounds = w.snap().version - v0;
      console.log(`MariaDB: hung node marked down ${ms}ms after SIGSTOP (fall ${FALL} x timeout ${TIMEOUT}ms), ${rounds} rounds published meanwhile`);
      // fall timed-out checks (each needs the timeout), and the other nodes' rounds kept their pace.
      expect(ms).toBeGreaterThanOrEqual((FALL - 1) * TIMEOUT);
      expect(rounds).toBeGreaterThanOrEqual(Math.floor(ms / INTERVAL / 2));
      expect(w.node('my0').up && w.node('my1').up).toBe(true);
      expect(w.snap().primary).toBe('my0');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const back = await until(() => up('my2'), 30_000, 'my2 back after SIGCONT');
    console.log(`MariaDB: node up again ${back}ms after SIGCONT`);
  }, 60_000);
});

describe('roles', () => {
  it('promotion: stop the primary, make a replica writable, repoint the other; the new primary is in the snapshot within one interval', async () => {
    // Some writes the replicas must have before the primary goes.
    const c0 = await primaryConn('my0');
    await c0.query('CREATE TABLE app.fo (id INT PRIMARY KEY)');
    await c0.query('INSERT INTO app.fo VALUES (1), (2), (3)');
    await c0.end();
    await cluster.waitForReplication();
    await cluster.stop('my0');
    await until(() => !up('my0') && w.snap().primary === null, 10_000, 'primary gone');
    expect(w.snap().splitBrain).toBe(false);
    // With no primary, replicas that applied everything stay readable (lag against the last position seen).
    expect(replicaEligibility(w.node('my1'), { bytes: 1000, timeMs: 1000 }).eligible).toBe(true);

    await cluster.query('my1', 'STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF');
    const writableAt = Date.now();
    await until(() => w.snap().primary === 'my1', 5_000, 'my1 primary');
    const seen = firstSeen(w, writableAt, (s) => s.primary === 'my1')!;
    console.log(`MariaDB: new primary in the snapshot ${seen.at - writableAt}ms after read_only=OFF (interval ${INTERVAL}ms)`);
    expect(seen.at - writableAt).toBeLessThanOrEqual(INTERVAL + 50);
    expect(w.snap().splitBrain).toBe(false);

    // The other replica follows the new primary; its lag is measured against it. (The `repl` user was
    // created outside the binlog on my0 only; root@127.0.0.1 exists everywhere.)
    const my1 = cluster.node('my1');
    await cluster.query('my2', `STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${my1.port}, MASTER_USER='root', MASTER_PASSWORD='root', MASTER_USE_GTID=slave_pos; START SLAVE`);
    const c1 = await primaryConn('my1');
    await c1.query('INSERT INTO app.fo VALUES (4)');
    const [[pos]] = await c1.query<mysql.RowDataPacket[]>('SELECT @@gtid_binlog_pos AS p');
    await c1.end();
    const target = parseMariaGtidPos(String(pos!.p));
    await until(() => gtidCovers(parseMariaGtidPos(w.node('my2').replayGtid ?? ''), target), 10_000, 'my2 follows my1');
    expect(w.node('my2')).toMatchObject({ role: 'replica', up: true, lagBytes: 0 });
    expect((await cluster.query<{ n: number }>('my2', 'SELECT COUNT(*) AS n FROM app.fo'))[0]!.n).toBe(4);
  }, 90_000);

  it('split brain: the old primary returns writable; no primary until it is made a replica, then it rejoins', async () => {
    // my0's config has no read_only: it comes back writable next to my1.
    await cluster.start('my0');
    await until(() => w.snap().splitBrain, 30_000, 'split brain');
    expect(w.snap().primary).toBeNull();
    expect(w.snap().nodes.filter((n) => n.up && n.role === 'primary').map((n) => n.name).sort()).toEqual(['my0', 'my1']);
    // Lag is not measured against either of two primaries.
    expect(w.node('my2').lagBytes).toBeNull();

    const my1 = cluster.node('my1');
    await cluster.query('my0', `SET GLOBAL read_only = ON; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${my1.port}, MASTER_USER='root', MASTER_PASSWORD='root', MASTER_USE_GTID=current_pos; START SLAVE`);
    const fixedAt = Date.now();
    await until(() => w.snap().primary === 'my1' && !w.snap().splitBrain, 5_000, 'resolved');
    console.log(`MariaDB: split brain resolved in the snapshot ${Date.now() - fixedAt}ms after read_only=ON`);
    await until(() => w.node('my0').role === 'replica' && w.node('my0').lagBytes === 0, 10_000, 'my0 rejoins as a caught-up replica');
    expect(replicaEligibility(w.node('my0'), { bytes: 1000, timeMs: 1000 }).eligible).toBe(true);
  }, 60_000);
});
