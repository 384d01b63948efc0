import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { MariaCluster } from '../support/mariadb-cluster.js';
import type { RunningProxy } from '../support/proxy.js';
import type { MysqlClusterRuntime } from '../../src/runtime/mysql-cluster.js';
import { PROBE_USER, connectThrough, prepareProbeUser, serverIds, startMysqlProxy } from './mysql-proxy-support.js';
import { readRecovery as readRecoveryOf, summarizeOps, timedUntil } from '../support/chaos-ops.js';

/**
 * Issue 10, item 4 (MariaDB): node failures under a steady mixed load, on a
 * private cluster (this file kills nodes). Six mysql2 clients keep one
 * connection each through the in-process proxy (three autocommit readers, an
 * autocommit writer, one alternating read/write, one running short
 * transactions), and every statement's outcome is recorded. The load logs in as
 * the probe user, so the nodes' processlists show exactly the pools'
 * connections (the topology monitor logs in as `app`).
 *
 * First, the read retry on its own (a read whose replica connection is killed
 * runs once more on the other replica; a read in a transaction, a write, and a
 * read whose answer had started are not run again). Then, in order:
 *   1. kill -9 replica my1, then start it again and let it catch up;
 *   2. SIGSTOP replica my2 for 10s (hung, not dead), then SIGCONT;
 *   3. a clean restart of my2 (SIGTERM, start);
 *   4. kill -9 the primary my0, promote the most advanced replica, point the other at it.
 * Before each fault a probe read is parked on the failing node (SELECT SLEEP), so
 * there is always a read in flight there: it must come back, from another node.
 * Replication is semi-synchronous (AFTER_SYNC): a write is acknowledged once a
 * replica has it, so every acknowledged write must be on the promoted replica.
 * Timings are printed, not asserted.
 */
let cluster: MariaCluster;
let proxy: RunningProxy;
let ids: Map<number, string>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * pool.idle_timeout: short, so that with the load stopped every pool empties on its own; the
 * nodes must then show no connection of the load's user at all (the baseline before the load).
 */
const IDLE_TIMEOUT_MS = 2000;

/** Semi-synchronous replication on `node` (GLOBAL settings: again after every restart). */
async function semiSync(node: string): Promise<void> {
  await cluster.query(node, "SET GLOBAL rpl_semi_sync_master_enabled = ON, rpl_semi_sync_master_timeout = 3000, rpl_semi_sync_master_wait_point = 'AFTER_SYNC'");
  if (cluster.node(node).role === 'replica') {
    // The IO thread reads the slave setting when it connects.
    await cluster.query(node, 'SET GLOBAL rpl_semi_sync_slave_enabled = ON; STOP SLAVE IO_THREAD; START SLAVE IO_THREAD');
  }
}

beforeAll(async () => {
  // mariadb-install-db fails now and then when another process runs it at the same moment
  // (see mysql-topology-proxy.test.ts): a failed start cleans up after itself, so try up to 3 times.
  for (let attempt = 1; ; attempt++) {
    try {
      cluster = await MariaCluster.start({ replicas: 2 });
      break;
    } catch (e) {
      if (attempt === 3) throw e;
      console.log(`[mysql chaos] private cluster start failed (attempt ${attempt}): ${(e as Error).message.slice(0, 200)}`);
    }
  }
  await prepareProbeUser(cluster.info);
  await cluster.query('my0', 'CREATE TABLE app.chaos_t (id BIGINT PRIMARY KEY, who VARCHAR(8) NOT NULL)');
  // The replication user exists only on my0 (created outside the binlog); a replica that may be promoted needs it too.
  for (const n of ['my1', 'my2']) {
    await cluster.query(n, "SET sql_log_bin = 0; CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'; SET sql_log_bin = 1");
  }
  for (const n of ['my0', 'my1', 'my2']) await semiSync(n);
  await cluster.waitForReplication();
  ids = await serverIds(cluster.info);
  proxy = await startMysqlProxy(cluster.info, { clusterYaml: `    pool:\n      size: 10\n      idle_timeout: ${IDLE_TIMEOUT_MS}ms\n    routing:\n      consistency: eventual\n    failover:\n      write_hold: 10s\n` });
}, 180_000);

afterAll(async () => {
  await proxy?.stop();
  await cluster?.stopAll();
});

function runtime(): MysqlClusterRuntime {
  return (proxy.app as unknown as { clusters: Map<string, { runtime: MysqlClusterRuntime }> }).clusters.get('main')!.runtime;
}

function status() {
  return proxy.app.status().clusters[0]! as ReturnType<RunningProxy['app']['status']>['clusters'][number] & { read_retries: number; client_connections: number };
}

function nodeStatus(name: string) {
  return status().nodes.find((n) => n.name === name)!;
}

const until = timedUntil;

async function healthz(): Promise<number> {
  return (await fetch(`http://127.0.0.1:${proxy.adminPort}/healthz`)).status;
}

interface Op {
  who: string;
  kind: 'read' | 'write' | 'tx';
  t0: number;
  t1: number;
  ok: boolean;
  errno?: number;
  message?: string;
  /** The node that answered a read (@@server_id). */
  node?: string;
  /** The rows a write or transaction inserted. */
  rows?: number[];
}

const ops: Op[] = [];
const sessionLosses: { who: string; at: number; message: string }[] = [];
let running = true;
let nextId = 1;

/** One client of the load: its connection, replaced only when the proxy closed it (recorded in sessionLosses). */
class Client {
  c!: mysql.Connection;
  /** The proxy ended this connection (mysql2 reported it closed). */
  private lost = false;
  constructor(readonly who: string) {}

  async open(): Promise<this> {
    const c = await connectThrough(proxy, PROBE_USER);
    this.c = c;
    this.lost = false;
    c.on('error', (e) => {
      if (this.c !== c || this.lost) return;
      this.lost = true;
      sessionLosses.push({ who: this.who, at: performance.now(), message: e.message });
    });
    return this;
  }

  /** mysql2 refuses further commands (the proxy ended the connection). */
  private closed(): boolean {
    const core = (this.c as unknown as { connection: { _closing?: boolean; _fatalError?: unknown } }).connection;
    return this.lost || core._closing === true || Boolean(core._fatalError);
  }

  /** After the proxy ended the connection, a new one (recorded in sessionLosses); any other error keeps it. */
  async recover(e: unknown): Promise<void> {
    if (!(e as { fatal?: boolean }).fatal && !this.closed()) return;
    if (!this.lost) sessionLosses.push({ who: this.who, at: performance.now(), message: (e as Error).message });
    await this.c.end().catch(() => undefined);
    await this.open();
  }

  private record(kind: Op['kind'], t0: number, e: unknown): void {
    const err = e as { errno?: number; message: string };
    ops.push({ who: this.who, kind, t0, t1: performance.now(), ok: false, errno: err.errno, message: err.message });
  }

  async read(): Promise<void> {
    const t0 = performance.now();
    try {
      const [rows] = await this.c.query<mysql.RowDataPacket[]>('SELECT @@server_id AS id');
      ops.push({ who: this.who, kind: 'read', t0, t1: performance.now(), ok: true, node: ids.get(Number(rows[0]!.id)) });
    } catch (e) {
      this.record('read', t0, e);
      await this.recover(e);
    }
  }

  async write(): Promise<void> {
    const id = nextId++;
    const t0 = performance.now();
    try {
      await this.c.query('INSERT INTO chaos_t (id, who) VALUES (?, ?)', [id, this.who]);
      ops.push({ who: this.who, kind: 'write', t0, t1: performance.now(), ok: true, rows: [id] });
    } catch (e) {
      this.record('write', t0, e);
      await this.recover(e);
    }
  }

  /** BEGIN; two INSERTs and a read in between; COMMIT. Acknowledged at the COMMIT's OK. */
  async transaction(): Promise<void> {
    const a = nextId++;
    const b = nextId++;
    const t0 = performance.now();
    try {
      await this.c.query('BEGIN');
      await this.c.query('INSERT INTO chaos_t (id, who) VALUES (?, ?)', [a, this.who]);
      await this.c.query('SELECT count(*) FROM chaos_t WHERE who = ?', [this.who]);
      await this.c.query('INSERT INTO chaos_t (id, who) VALUES (?, ?)', [b, this.who]);
      await this.c.query('COMMIT');
      ops.push({ who: this.who, kind: 'tx', t0, t1: performance.now(), ok: true, rows: [a, b] });
    } catch (e) {
      this.record('tx', t0, e);
      await this.c.query('ROLLBACK').catch(() => undefined);
      await this.recover(e);
    }
  }
}

const READERS = ['r1', 'r2', 'r3'];
const WRITERS = ['w1', 'm1', 't1'];
/** What each client does: readers read, w1 writes, m1 alternates, t1 runs transactions. */
const STEPS: Record<string, (c: Client, i: number) => Promise<void>> = {
  r1: (c) => c.read(),
  r2: (c) => c.read(),
  r3: (c) => c.read(),
  w1: (c) => c.write(),
  m1: (c, i) => (i % 2 ? c.read() : c.write()),
  t1: (c) => c.transaction(),
};
let load: Promise<Client[]>;

/** Bounded load loops: one unit at a time per client, ~10ms apart, until stopped (at most 20,000 each). */
function startLoad(clients: Client[]): Promise<Client[]> {
  running = true;
  return Promise.all(
    clients.map(async (c) => {
      for (let i = 0; running && i < 20_000; i++) {
        await STEPS[c.who]!(c, i);
        await sleep(10);
      }
      return c;
    }),
  );
}

/**
 * Stops the load and has every client read once more: a write's connection
 * stays with its session until the next command (it lingers for LAST_INSERT_ID()
 * and the like), and that read gives it back. Then nothing is lent.
 */
async function pauseLoad(): Promise<Client[]> {
  running = false;
  const clients = await load;
  for (const c of clients) await c.read();
  return clients;
}

/** Outcomes of units that ended at or after `since`. */
function window(since: number): Op[] {
  return ops.filter((o) => o.t1 >= since);
}

function acked(before = Infinity): number[] {
  return ops.filter((o) => o.ok && o.rows && o.t1 < before).flatMap((o) => o.rows!);
}

const readRecovery = (since: number) => readRecoveryOf(ops, READERS, since);
const summary = (list: Op[]) => summarizeOps(list, (o) => o.errno, 'units');

/**
 * Errors only for work in flight on the failed node: each names it ("connection
 * to node X was lost", 2013), at most one per client, none on a reader, and
 * none at connect time (a refused connect is routed again: no 2003 reaches a client).
 */
function expectOnlyFailedNodeErrors(list: Op[], node: string): void {
  const errs = list.filter((o) => !o.ok);
  for (const e of errs) expect(e.message, summary(list)).toMatch(new RegExp(`\\bnode ${node}\\b`));
  for (const e of errs) expect(e.errno, summary(list)).not.toBe(2003);
  expect(errs.filter((e) => e.kind === 'read'), summary(list)).toEqual([]);
  for (const who of WRITERS) expect(errs.filter((o) => o.who === who).length, summary(list)).toBeLessThanOrEqual(1);
}

/** Node -> connections of the load's user on it, from the processlist. */
async function backendConnections(node: string): Promise<number> {
  const [r] = await cluster.query<{ n: number }>(node, `SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE USER = '${PROBE_USER.user}'`);
  return Number(r!.n);
}

/** Every pool settled (nothing lent or waited for) and holding exactly what the live nodes show. */
async function expectPoolsMatchNodes(live: string[]): Promise<Record<string, number>> {
  const settled = await until(() => status().nodes.every((n) => n.pool.active === 0 && n.pool.waiting === 0), 10_000);
  expect(settled, JSON.stringify(status().nodes.map((n) => [n.name, n.pool]))).not.toBeNull();
  const out: Record<string, number> = {};
  for (const node of live) {
    // A connection the proxy just closed can linger in the processlist for a moment.
    let onNode = 0;
    const idle = () => nodeStatus(node).pool.idle;
    await until(async () => (onNode = await backendConnections(node)) === idle(), 3000);
    expect(onNode, `${node}: pool idle ${idle()}`).toBe(idle());
    out[node] = idle();
  }
  return out;
}

/** With nothing running, pools close their idle connections (idle_timeout): every pool empty and no node shows one. */
async function expectDrained(live: string[]): Promise<{ ms: number; pools: Record<string, number>; onNodes: Record<string, number> }> {
  const pools: Record<string, number> = {};
  const onNodes: Record<string, number> = {};
  const ms = await until(async () => {
    let total = 0;
    for (const n of status().nodes) total += n.pool.idle + n.pool.active + n.pool.waiting;
    for (const n of live) total += await backendConnections(n);
    return total === 0;
  }, IDLE_TIMEOUT_MS * 4);
  for (const n of status().nodes) pools[n.name] = n.pool.idle + n.pool.active;
  for (const n of live) onNodes[n] = await backendConnections(n);
  expect(ms, `pools ${JSON.stringify(pools)}, on the nodes ${JSON.stringify(onNodes)}`).not.toBeNull();
  return { ms: ms!, pools, onNodes };
}

let probeSeq = 0;

/**
 * A read parked on `node`: SELECT SLEEP(s) on its own client connection, sent
 * again until it lands there (reads alternate between the replicas). Resolves
 * once it runs on `node`; `done` is its outcome.
 */
async function parkReadOn(node: string, seconds: number): Promise<{ done: Promise<{ ok: boolean; node?: string; ms: number; message?: string }>; close(): Promise<void> }> {
  const c = await connectThrough(proxy, PROBE_USER);
  c.on('error', () => undefined);
  for (let attempt = 0; attempt < 20; attempt++) {
    const tag = `probe_${++probeSeq}`;
    const t0 = performance.now();
    const done = c
      .query<mysql.RowDataPacket[]>(`SELECT SLEEP(${seconds}) AS ${tag}, @@server_id AS id`)
      .then(([rows]) => ({ ok: true, node: ids.get(Number(rows[0]!.id)), ms: performance.now() - t0 }))
      .catch((e: Error) => ({ ok: false, ms: performance.now() - t0, message: e.message }));
    let where: string | null = null;
    await until(async () => {
      for (const n of ['my0', 'my1', 'my2']) {
        if (!cluster.pid(n)) continue;
        const rows = await cluster.query(n, `SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '${PROBE_USER.user}' AND INFO LIKE '%${tag}%'`);
        if (rows.length > 0) where = n;
      }
      return where !== null;
    }, 3000);
    if (where === node) return { done, close: () => c.end().catch(() => undefined) };
    await done;
  }
  throw new Error(`no read landed on ${node} in 20 attempts`);
}

/** The node and backend thread running a statement of the load's user LIKE `like` (on any running node). */
async function threadOf(like: string): Promise<{ node: string; id: number }> {
  let at: { node: string; id: number } | null = null;
  await until(async () => {
    for (const n of ['my0', 'my1', 'my2']) {
      if (!cluster.pid(n)) continue;
      const rows = await cluster.query<{ ID: number }>(n, `SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '${PROBE_USER.user}' AND INFO LIKE '${like}'`);
      if (rows[0]) at = { node: n, id: Number(rows[0].ID) };
    }
    return at !== null;
  }, 3000);
  if (at === null) throw new Error(`no statement like ${like} on any node`);
  return at;
}

async function killThread(at: { node: string; id: number }): Promise<void> {
  await cluster.query(at.node, `KILL CONNECTION ${at.id}`);
}

const figures: string[] = [];

describe('MySQL read retry (a read whose backend connection dies unanswered)', () => {
  it('KILL CONNECTION on the replica while a read runs there: the read runs again on the other replica, the same client goes on', async () => {
    const retries0 = status().read_retries;
    const probe = await parkReadOn('my1', 1);
    const at = await threadOf('%SLEEP(1) AS probe_%');
    expect(at.node).toBe('my1');
    await killThread(at);
    const r = await probe.done;
    await probe.close();
    figures.push(`KILL CONNECTION during a read on my1: ${JSON.stringify(r)}, read_retries +${status().read_retries - retries0}`);
    expect(r, JSON.stringify(r)).toMatchObject({ ok: true, node: 'my2' });
    expect(status().read_retries - retries0).toBe(1);
  });

  it('not run again: a read in a transaction, a write, a read whose answer had started', async () => {
    const retries0 = status().read_retries;
    // 1. A read inside a transaction (on the primary): the transaction is gone, so is the client's connection.
    const tx = await connectThrough(proxy, PROBE_USER);
    tx.on('error', () => undefined);
    await tx.query('BEGIN');
    const inTx = tx.query('SELECT SLEEP(1) AS in_tx').then(() => 'ok', (e: Error) => e.message);
    const txAt = await threadOf('%in_tx%');
    await killThread(txAt);
    const txOutcome = await inTx;
    await tx.end().catch(() => undefined);
    // 2. A write: an error, and the row is not there.
    const w = await connectThrough(proxy, PROBE_USER);
    const write = w.query("INSERT INTO chaos_t (id, who) SELECT 900000001, IF(SLEEP(1) = 0, 'x', 'y')").then(() => 'ok', (e: Error) => e.message);
    await killThread(await threadOf('%900000001, IF(SLEEP%'));
    const writeOutcome = await write;
    const [rows] = await w.query<mysql.RowDataPacket[]>('SELECT count(*) AS n FROM chaos_t WHERE id = 900000001');
    await w.end();
    // 3. A read whose first row (bigger than the server's network buffer) reached the client before it died.
    const r = await connectThrough(proxy, PROBE_USER);
    r.on('error', () => undefined);
    const started = r
      .query(`SELECT IF(seq = 1, REPEAT('x', 200000), SLEEP(seq)) AS started_answer FROM seq_1_to_2`)
      .then(() => 'ok', (e: Error) => e.message);
    const startedAt = await threadOf('%started_answer%');
    // The first row is out (the 200 kB exceed net_buffer_length); the second sleeps 2s.
    await sleep(300);
    await killThread(startedAt);
    const startedOutcome = await started;
    // Ended by the proxy (an answer it had begun to forward cannot be ended cleanly), not answered with an ERR and kept.
    const afterwards = await r.query('SELECT 1').then(() => 'open', () => 'closed');
    await r.end().catch(() => undefined);
    figures.push(`not retried: read in a transaction (on ${txAt.node}) -> ${txOutcome}; write -> ${writeOutcome}; read with its answer started (on ${startedAt.node}) -> ${startedOutcome}`);
    expect(txOutcome).not.toBe('ok');
    expect(writeOutcome).not.toBe('ok');
    expect(Number(rows[0]!.n)).toBe(0);
    expect(startedOutcome).not.toBe('ok');
    expect(afterwards).toBe('closed');
    expect(status().read_retries - retries0).toBe(0);
  });
});

describe('chaos under a steady mixed load', () => {
  let baseline: Record<string, number>;

  it('baseline: the load runs without errors; pools hold what the nodes show', async () => {
    // Before the load: nothing open (the retry tests' connections have timed out).
    const empty = await expectDrained(['my0', 'my1', 'my2']);
    const clients = await Promise.all(Object.keys(STEPS).map((who) => new Client(who).open()));
    load = startLoad(clients);
    await sleep(1500);
    const list = window(0);
    expect(list.length).toBeGreaterThan(50);
    expect(list.filter((o) => !o.ok)).toEqual([]);
    // Measured with the load paused (nothing lent), on the same client connections.
    await pauseLoad();
    baseline = await expectPoolsMatchNodes(['my0', 'my1', 'my2']);
    load = startLoad(clients);
    figures.push(`before the load: pools and nodes empty (${Math.round(empty.ms)}ms wait); baseline 1.5s: ${summary(list)}; pools (idle = processlist) ${JSON.stringify(baseline)}`);
  });

  it('kill -9 replica my1: writes unaffected, no read fails (the one in flight there runs again on my2), my1 restarts and catches up', async () => {
    const retries0 = status().read_retries;
    const probe = await parkReadOn('my1', 2);
    const t = performance.now();
    await cluster.kill('my1');
    const detect = await until(() => !nodeStatus('my1').up, 15_000);
    const parked = await probe.done;
    await probe.close();
    await sleep(1000);
    const list = window(t);
    // 1. Checked before the restart, thrown after it: the next scenarios need my1 back.
    let failed: unknown = null;
    try {
      expect(detect).not.toBeNull();
      expectOnlyFailedNodeErrors(list, 'my1');
      expect(list.filter((o) => !o.ok)).toEqual([]);
      expect(parked, JSON.stringify(parked)).toMatchObject({ ok: true, node: 'my2' });
      expect(readRecovery(t)).not.toBeNull();
      expect(list.filter((o) => o.ok && o.node === 'my1' && o.t0 > t + detect!)).toEqual([]);
      expect(await healthz()).toBe(200);
    } catch (e) {
      failed = e;
    }
    const retries = status().read_retries - retries0;
    // 2. Start it again: it replicates from where it was, and serves reads again.
    const tStart = performance.now();
    await cluster.start('my1');
    await semiSync('my1');
    if (failed) throw failed;
    const started = performance.now() - tStart;
    const up = await until(() => nodeStatus('my1').up && nodeStatus('my1').eligible, 20_000);
    expect(up).not.toBeNull();
    const tCatch = performance.now();
    await cluster.waitForReplication();
    const caughtUp = performance.now() - tCatch;
    const served = await until(() => ops.some((o) => o.ok && o.node === 'my1' && o.t0 > tStart), 10_000);
    expect(served).not.toBeNull();
    expect(window(t).filter((o) => !o.ok)).toEqual([]);
    figures.push(
      `kill -9 my1: down after ${Math.round(detect!)}ms, parked read answered by ${parked.node} after ${Math.round(parked.ms)}ms, read_retries +${retries}, reads recovered after ${Math.round(readRecovery(t)!)}ms; ` +
        `restart: mariadbd up in ${Math.round(started)}ms, up+eligible ${Math.round(up!)}ms later, caught up with my0 ${Math.round(caughtUp)}ms after that, served reads again; ${summary(window(t))}`,
    );
  });

  it('SIGSTOP replica my2 for 10s, then SIGCONT: nothing fails, reads go on elsewhere (the hung one is cut and runs again), my2 rejoins', async () => {
    const STOP_MS = 10_000;
    const cut0 = runtime().hungConnectionsCut;
    const probe = await parkReadOn('my2', 1);
    const pid = cluster.pid('my2')!;
    const t = performance.now();
    process.kill(pid, 'SIGSTOP');
    let detect: number | null = null;
    let parked: Awaited<typeof probe.done> | null = null;
    try {
      detect = await until(() => !nodeStatus('my2').up, STOP_MS);
      parked = await Promise.race([probe.done, sleep(Math.max(0, STOP_MS - (performance.now() - t))).then(() => null)]);
      await sleep(Math.max(0, STOP_MS - (performance.now() - t)));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const tCont = performance.now();
    parked ??= await probe.done;
    await probe.close();
    expect(detect).not.toBeNull();
    const back = await until(() => nodeStatus('my2').up && nodeStatus('my2').eligible, 15_000);
    expect(back).not.toBeNull();
    await sleep(500);
    const list = window(t);
    expect(list.filter((o) => !o.ok), summary(list)).toEqual([]);
    // Answered from my1 while my2 was still stopped.
    expect(parked, JSON.stringify(parked)).toMatchObject({ ok: true, node: 'my1' });
    expect(parked.ms).toBeLessThan(STOP_MS);
    const during = ops.filter((o) => o.kind === 'read' && o.t0 > t + detect! && o.t1 < tCont);
    for (const who of READERS) expect(during.some((o) => o.who === who && o.ok), who).toBe(true);
    expect(during.filter((o) => o.node === 'my2')).toEqual([]);
    const cut = runtime().hungConnectionsCut - cut0;
    expect(cut).toBeGreaterThan(0);
    const slowest = Math.max(...list.filter((o) => o.kind === 'read').map((o) => o.t1 - o.t0));
    expect(await healthz()).toBe(200);
    figures.push(
      `SIGSTOP my2 ${STOP_MS / 1000}s: down after ${Math.round(detect!)}ms (${cut} hung connection(s) cut), parked read answered by ${parked.node} after ${Math.round(parked.ms)}ms, up+eligible ${Math.round(back!)}ms after SIGCONT; ` +
        `${during.length} reads during the stop, none from my2; slowest read ${Math.round(slowest)}ms; ${summary(list)}`,
    );
  });

  it('clean restart of my2 (SIGTERM, start): no read fails, writes unaffected, my2 rejoins', async () => {
    const retries0 = status().read_retries;
    const probe = await parkReadOn('my2', 2);
    const t = performance.now();
    await cluster.stop('my2');
    const stopped = performance.now() - t;
    const parked = await probe.done;
    await probe.close();
    const detect = await until(() => !nodeStatus('my2').up, 10_000);
    await cluster.start('my2');
    await semiSync('my2');
    const back = await until(() => nodeStatus('my2').up && nodeStatus('my2').eligible, 20_000);
    expect(back).not.toBeNull();
    await cluster.waitForReplication();
    await sleep(500);
    const list = window(t);
    expectOnlyFailedNodeErrors(list, 'my2');
    expect(list.filter((o) => !o.ok)).toEqual([]);
    // A shutdown may let the SLEEP end early (it returns 1) rather than fail it: either way the client gets an answer.
    expect(parked.ok, JSON.stringify(parked)).toBe(true);
    expect(readRecovery(t)).not.toBeNull();
    figures.push(
      `restart my2: stopped in ${Math.round(stopped)}ms, seen down after ${detect === null ? 'never' : `${Math.round(detect)}ms`}, parked read answered by ${parked.node} after ${Math.round(parked.ms)}ms, read_retries +${status().read_retries - retries0}, ` +
        `up+eligible ${Math.round(back!)}ms after start; ${summary(list)}`,
    );
  });

  it('kill -9 the primary my0, promote a replica: only writes in flight fail, no read fails, writes resume, every acknowledged write is on the new primary', async () => {
    const [semi] = await cluster.query<{ Value: string }>('my0', "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_no_tx'");
    const t = performance.now();
    await cluster.kill('my0');
    const detect = await until(() => !nodeStatus('my0').up, 10_000);
    expect(detect).not.toBeNull();
    // 1. What a failover tool does: let both replicas apply what they received, promote the most advanced.
    for (const n of ['my1', 'my2']) {
      const applied = await until(async () => {
        const [s] = await cluster.query<{ Slave_IO_Running: string; Slave_SQL_Running_State: string }>(n, 'SHOW SLAVE STATUS');
        return s!.Slave_IO_Running !== 'Yes' && /read all relay log/i.test(s!.Slave_SQL_Running_State);
      }, 20_000);
      expect(applied, n).not.toBeNull();
    }
    const seq = async (n: string) => {
      const [r] = await cluster.query<{ pos: string }>(n, 'SELECT @@gtid_slave_pos AS pos');
      return Number(/0-\d+-(\d+)/.exec(r!.pos)?.[1] ?? 0);
    };
    const [s1, s2] = [await seq('my1'), await seq('my2')];
    const [next, other] = s1 >= s2 ? ['my1', 'my2'] : ['my2', 'my1'];
    const tPromote = performance.now();
    await cluster.promote(next);
    const promoted = performance.now() - tPromote;
    await cluster.query(
      other,
      `STOP SLAVE; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${cluster.node(next).port}, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos; START SLAVE`,
    );
    const newPrimary = await until(() => status().primary === next, 15_000);
    expect(newPrimary).not.toBeNull();
    const writesBack = await until(() => WRITERS.every((w) => ops.some((o) => o.who === w && o.ok && o.rows && o.t0 > tPromote)), 15_000);
    expect(writesBack).not.toBeNull();
    await sleep(1000);
    const list = window(t);
    expectOnlyFailedNodeErrors(list, 'my0');
    expect(readRecovery(t)).not.toBeNull();
    // 2. Every write acknowledged (before this check) is on the new primary: semi-synchronous
    //    replication acknowledged none that no replica had.
    const tCheck = performance.now();
    const present = new Set((await cluster.query<{ id: number }>(next, 'SELECT id FROM app.chaos_t')).map((r) => Number(r.id)));
    const ackedBefore = acked(tCheck);
    const lost = ackedBefore.filter((id) => !present.has(id));
    expect(lost, `acknowledged writes missing on ${next}`).toEqual([]);
    // 3. The other replica follows the new primary.
    const follows = await until(async () => {
      const [a] = await cluster.query<{ n: number }>(other, 'SELECT count(*) AS n FROM app.chaos_t WHERE id <= ?', [Math.max(...ackedBefore)]);
      const [b] = await cluster.query<{ n: number }>(next, 'SELECT count(*) AS n FROM app.chaos_t WHERE id <= ?', [Math.max(...ackedBefore)]);
      return Number(a!.n) === Number(b!.n);
    }, 10_000);
    expect(follows, `${other} follows ${next}`).not.toBeNull();
    expect(await healthz()).toBe(200);
    const firstOkAfter = ops.find((o) => o.ok && o.rows && o.t0 > t)!;
    const lostSessions = sessionLosses.filter((l) => l.at >= t);
    figures.push(
      `kill -9 my0 + promote ${next} (gtid seq my1 ${s1}, my2 ${s2}; unacknowledged-by-replica commits before: ${semi?.Value}): my0 down after ${Math.round(detect!)}ms, promote took ${Math.round(promoted)}ms, ` +
        `proxy saw ${next} primary ${Math.round(newPrimary!)}ms after, writes resumed ${Math.round(firstOkAfter.t1 - t)}ms after the kill; acknowledged writes missing on ${next}: ${lost.length} of ${ackedBefore.length}; ` +
        `client connections the proxy ended (a transaction lost with its connection): ${lostSessions.map((l) => `${l.who}: ${l.message}`).join('; ') || 'none'}; ${summary(list)}`,
    );
  });

  it('afterwards: readers kept their connections, pool counts are back to what the nodes show (no leaked backend connection)', async () => {
    const clients = await pauseLoad();
    // Only a transaction on the killed primary may have lost its client connection (as the server would have).
    expect(sessionLosses.filter((l) => l.who !== 't1'), JSON.stringify(sessionLosses)).toEqual([]);
    expect(sessionLosses.length).toBeLessThanOrEqual(1);
    const live = ['my1', 'my2'];
    const end = await expectPoolsMatchNodes(live);
    expect(nodeStatus('my0').pool.idle).toBe(0);
    expect(status().client_connections).toBe(clients.length);
    // No more connections than the load ever needed: at most one per client and node.
    for (const n of live) expect(end[n]!).toBeLessThanOrEqual(Math.max(baseline[n]!, clients.length));
    // 2. Back to the baseline before the load: idle connections time out, and then no node shows one of the load's.
    const drained = await expectDrained(live);
    await Promise.all(clients.map((c) => c.c.end().catch(() => undefined)));
    expect(await until(() => status().client_connections === 0, 5000)).not.toBeNull();
    const total = ops.length;
    const errors = ops.filter((o) => !o.ok).length;
    figures.push(`whole run: ${total} units, ${errors} errors, ${acked().length} rows acknowledged, ${sessionLosses.length} client connection(s) ended by the proxy; pools at the end ${JSON.stringify(end)} (baseline ${JSON.stringify(baseline)}), all closed on the nodes ${Math.round(drained.ms)}ms later ${JSON.stringify(drained.onNodes)}`);
    console.log(`mysql chaos figures:\n  ${figures.join('\n  ')}`);
  });
});
