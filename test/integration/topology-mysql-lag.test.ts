import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import mysql from 'mysql2/promise';
import { MariaCluster } from '../support/mariadb-cluster.js';
import { replicaEligibility } from '../../src/routing/eligibility.js';
import { CausalTracker } from '../../src/frontend/causal.js';
import { gtidCovers, parseMariaGtidPos } from '../../src/topology/gtid.js';
import { firstSeen, until, watch, type Watched } from './topology-mysql-support.js';

/**
 * MysqlTopologyMonitor on the shared MariaDB cluster (my0 primary, my1 and my2
 * GTID replicas): roles, lag in transactions and seconds while one replica's
 * SQL thread is stopped, the lag budget, and the positions read-your-writes
 * needs. Only the SQL thread is stopped (and always restarted), so the
 * cluster is left as it was found.
 */
const info = inject('mariaCluster');
const cluster = MariaCluster.attach(info);
const primary = info.nodes.find((n) => n.role === 'primary')!.name;
const [paused, other] = info.nodes.filter((n) => n.role === 'replica').map((n) => n.name) as [string, string];
const INTERVAL = 100;
const BUDGET_MS = 500;

let w: Watched;
let writer: mysql.Connection;

beforeAll(async () => {
  writer = await mysql.createConnection({ ...cluster.connectionInfo(primary, 'app') });
  await writer.query('DROP TABLE IF EXISTS mlag_probe');
  await writer.query('CREATE TABLE mlag_probe (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB');
  await cluster.waitForReplication();
  // Root may run SHOW SLAVE STATUS (SLAVE MONITOR), so the Seconds_Behind_Master cross-check is on.
  w = watch(info, { interval: `${INTERVAL}ms`, lag: `{ bytes: 1000000, time: ${BUDGET_MS}ms }`, user: 'superuser' });
});

afterAll(async () => {
  w?.stop();
  await cluster.resumeReplay(paused).catch(() => undefined);
  await writer?.end();
});

const budget = { bytes: 1_000_000, timeMs: BUDGET_MS };
const eligible = (name: string) => replicaEligibility(w.node(name), budget).eligible;

/** Inserts one row every ~10ms until stopped; returns how many. `commits` holds when each insert returned. */
function writeLoad(): { stop: () => Promise<number>; commits: number[] } {
  let on = true;
  let n = 0;
  const commits: number[] = [];
  const loop = (async () => {
    while (on) {
      await writer.query('INSERT INTO mlag_probe (v) VALUES (1)');
      commits.push(Date.now());
      n++;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    commits,
    stop: async () => {
      on = false;
      await loop;
      return n;
    },
  };
}

describe('MariaDB roles and lag', () => {
  it('discovers roles: one writable primary, read-only replicas, all caught up', async () => {
    await until(() => w.snap().version > 0 && w.snap().nodes.every((n) => n.up), 10_000, 'first rounds');
    const s = w.snap();
    expect(s.primary).toBe(primary);
    expect(s.splitBrain).toBe(false);
    expect(Object.fromEntries(s.nodes.map((n) => [n.name, n.role]))).toEqual({ [primary]: 'primary', [paused]: 'replica', [other]: 'replica' });
    await until(() => eligible(paused) && eligible(other), 5_000, 'replicas eligible');
    // The snapshot's GTID text agrees with the server's own.
    const [[row]] = await writer.query<mysql.RowDataPacket[]>('SELECT @@gtid_binlog_pos AS pos');
    await until(() => {
      const text = w.node(primary).replayGtid;
      return !!text && gtidCovers(parseMariaGtidPos(text), parseMariaGtidPos(String(row!.pos)));
    }, 2_000, 'primary position');
    expect(w.node(paused).secondsBehindSource).toBe(0);
  });

  it('stopped replay: lag grows in transactions and seconds, the replica is out within two intervals of the budget, back after START', async () => {
    const load = writeLoad();
    let stopped = false;
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(eligible(paused)).toBe(true);
      await cluster.pauseReplay(paused);
      const pausedAt = Date.now();
      // 1. Out: the budget is crossed about BUDGET_MS after the pause (writes every 10ms).
      await until(() => !eligible(paused), 10_000, 'paused replica ineligible');
      const out = firstSeen(w, pausedAt, (s) => !replicaEligibility(s.nodes.find((n) => n.name === paused)!, budget).eligible)!;
      // The true lag crosses the budget BUDGET_MS after the first commit the replica did not apply.
      const firstMissed = load.commits.find((t) => t >= pausedAt)!;
      const outAfter = out.at - (firstMissed + BUDGET_MS);
      console.log(`MariaDB lag: replica out ${out.at - pausedAt}ms after its SQL thread stopped, ${outAfter}ms after its lag crossed the budget (budget ${BUDGET_MS}ms, interval ${INTERVAL}ms)`);
      expect(replicaEligibility(out.snap.nodes.find((n) => n.name === paused)!, budget).reason).toBe('lag_time');
      // Never before the crossing; at most two intervals after it (samples are stamped when seen, up to one
      // interval after the commit, and the check runs once per interval), plus a little probe time.
      // (A commit a few ms before the pause may also be missed: it was not applied yet when the thread stopped.)
      expect(out.at).toBeGreaterThanOrEqual(pausedAt + BUDGET_MS - 50);
      expect(outAfter).toBeLessThanOrEqual(2 * INTERVAL + 50);
      expect(eligible(other)).toBe(true);

      // 2. Both measures grew, seconds in sub-second steps; the server's own figure is NULL with the SQL thread stopped.
      const series = w.seen.filter((e) => e.at >= pausedAt).map((e) => e.snap.nodes.find((n) => n.name === paused)!);
      const secs = series.map((n) => n.lagSeconds!).filter((x) => x > 0);
      const txs = series.map((n) => n.lagBytes!);
      expect(secs.length).toBeGreaterThan(3);
      expect(secs.some((x) => x < 1 && x > 0)).toBe(true);
      const steps = secs.slice(1).map((x, i) => x - secs[i]!).filter((d) => d > 0);
      console.log(`MariaDB lag seconds seen after the pause: ${secs.slice(0, 8).map((x) => x.toFixed(3)).join(', ')} ...; median step ${(steps.sort((a, b) => a - b)[steps.length >> 1]! * 1000).toFixed(0)}ms`);
      expect(txs[txs.length - 1]!).toBeGreaterThan(txs[0]!);
      expect(w.node(paused).secondsBehindSource).toBeNull();

      // 3. With writes stopped, the transaction count settles at exactly what the servers say, and seconds keep growing.
      const inserted = await load.stop();
      stopped = true;
      await new Promise((r) => setTimeout(r, 3 * INTERVAL));
      const truth = await cluster.lagTransactions(paused);
      const s1 = w.node(paused);
      console.log(`MariaDB lag with writes stopped: monitor ${s1.lagBytes} transactions, servers ${truth}, ${s1.lagSeconds}s; ${inserted} rows inserted`);
      expect(truth).toBeGreaterThan(10);
      expect(s1.lagBytes).toBe(truth);
      await new Promise((r) => setTimeout(r, 3 * INTERVAL));
      expect(w.node(paused).lagSeconds!).toBeGreaterThan(s1.lagSeconds!);
      expect(w.node(paused).lagBytes).toBe(truth);

      // 4. Back: after START the replica catches up and is eligible again.
      await cluster.resumeReplay(paused);
      const back = await until(() => eligible(paused), 10_000, 'resumed replica eligible');
      console.log(`MariaDB lag: replica eligible again ${back}ms after START SLAVE SQL_THREAD`);
      expect(w.node(paused)).toMatchObject({ lagBytes: 0, lagSeconds: 0 });
    } finally {
      if (!stopped) await load.stop();
      await cluster.resumeReplay(paused);
    }
  }, 60_000);
});

describe('a monitoring login without SLAVE MONITOR', () => {
  /** Monitoring sessions of the app user on `node`, by the connect attribute the monitor sets. */
  async function monitorSessions(node: string): Promise<number> {
    const [row] = await cluster.query<{ n: number }>(
      node,
      "SELECT COUNT(*) AS n FROM performance_schema.session_connect_attrs a JOIN information_schema.PROCESSLIST p ON p.ID = a.PROCESSLIST_ID WHERE a.ATTR_NAME = 'program_name' AND a.ATTR_VALUE = 'switchyard-monitor' AND p.USER = 'app'",
    );
    return Number(row!.n);
  }

  it('still finds roles and lag; only the Seconds_Behind_Master cross-check is missing; stop() closes its connections', async () => {
    const before = await monitorSessions(other);
    const plain = watch(info, { interval: `${INTERVAL}ms` });
    try {
      await until(() => plain.snap().version > 2 && plain.snap().nodes.every((n) => n.up), 10_000, 'first rounds');
      expect(plain.snap().primary).toBe(primary);
      expect(plain.node(other)).toMatchObject({ role: 'replica', lagBytes: 0, secondsBehindSource: null });
      expect(w.node(other).secondsBehindSource).toBe(0);
      // One monitoring connection per node, kept across rounds.
      expect(await monitorSessions(other)).toBe(before + 1);
    } finally {
      plain.stop();
    }
    await until(async () => (await monitorSessions(other)) === before, 5_000, 'monitoring connection closed');
  });
});

describe('MariaDB read-your-writes positions', () => {
  it('the causal tracker, fed these snapshots, sends a read only to a replica that has the write', async () => {
    await cluster.pauseReplay(paused);
    try {
      const tracker = new CausalTracker();
      tracker.begin(true);
      const [res] = await writer.query<mysql.ResultSetHeader>('INSERT INTO mlag_probe (v) VALUES (2)');
      tracker.settle();
      const [[g]] = await writer.query<mysql.RowDataPacket[]>('SELECT @@last_gtid AS g');
      const commitGtid = parseMariaGtidPos(String(g!.g));
      // 1. Until a round that started after the commit exists, the read must go to the primary.
      let required = tracker.required(w.snap());
      await until(() => (required = tracker.required(w.snap())) !== null && required < (1n << 64n) - 1n, 2_000, 'position after the write');
      const pausedNode = w.node(paused);
      // 2. The paused replica is behind the required position, by the scalar and by the exact GTID.
      expect(pausedNode.replayPosition! < required!).toBe(true);
      expect(gtidCovers(parseMariaGtidPos(pausedNode.replayGtid!), commitGtid)).toBe(false);
      // 3. The other replica reaches it; when it does, it really has the row, and the exact GTID check agrees.
      await until(() => (w.node(other).replayPosition ?? -1n) >= required!, 5_000, 'other replica replayed the write');
      expect(gtidCovers(parseMariaGtidPos(w.node(other).replayGtid!), commitGtid)).toBe(true);
      const onOther = await cluster.query<{ v: number }>(other, 'SELECT v FROM app.mlag_probe WHERE id = ?', [res.insertId]);
      const onPaused = await cluster.query<{ v: number }>(paused, 'SELECT v FROM app.mlag_probe WHERE id = ?', [res.insertId]);
      expect(onOther).toEqual([{ v: 2 }]);
      expect(onPaused).toEqual([]);
      expect(w.node(paused).replayPosition! < required!).toBe(true);
    } finally {
      await cluster.resumeReplay(paused);
    }
    // 4. After resume the paused replica reaches the position too.
    await until(() => {
      const n = w.node(paused);
      return n.lagBytes === 0;
    }, 5_000, 'paused replica caught up');
  }, 30_000);
});
