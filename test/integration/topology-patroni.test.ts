import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { appClient, nodeStatementCalls, resetStatementStats } from '../support/pg-stats.js';
import { PatroniCluster, patroniMissing } from './topology-patroni-support.js';

/**
 * discovery.patroni against the real thing: etcd + three Patroni 3.0.2
 * instances managing PostgreSQL 15 (pa0 bootstraps and leads; pa2 is tagged
 * noloadbalance + nofailover), switchyard in front with the three REST URLs.
 * Routing is checked at the backends (pg_stat_statements per node, and
 * inet_server_port() of each acknowledged write).
 */
const missing = patroniMissing();
if (missing) console.warn(`topology-patroni: skipped, Patroni/etcd binaries are absent: ${missing}`);

let cluster: PatroniCluster;
let proxy: RunningProxy;

type Status = { primary: string | null; patroni?: { reachable: boolean; leader: string | null }; nodes: { name: string; role: string; eligible: boolean; ineligible_reason?: string; patroni?: Record<string, unknown> }[] };
const status = (): Status => proxy.app.status().clusters[0]! as unknown as Status;

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs}ms; status ${JSON.stringify(status())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `n` reads through the proxy, each tagged so pg_stat_statements counts it where it ran. */
async function readThroughProxy(tag: string, n: number): Promise<void> {
  const c = new pg.Client({ connectionString: proxy.url(cluster.database) });
  await c.connect();
  try {
    for (let i = 0; i < n; i++) await c.query(`SELECT count(*) AS ${tag} FROM patroni_probe`);
  } finally {
    await c.end();
  }
}

describe.skipIf(missing !== null)('discovery.patroni with a real Patroni cluster', () => {
  beforeAll(async () => {
    cluster = await PatroniCluster.start({ pa2: { noloadbalance: true, nofailover: true } });
    const leader = (await cluster.leader())!;
    const c = await appClient(cluster, leader, cluster.database);
    await c.query('CREATE TABLE patroni_probe (id bigint primary key, at_port int)');
    await c.end();
    // Replication is asynchronous: reads through the proxy (new sessions, so no causal
    // tracking) must not reach a replica that has not replayed the table yet (seen in CI).
    for (const n of cluster.nodes) {
      await waitFor(`${n.name} has replayed patroni_probe`, async () => (await cluster.query<{ ok: boolean }>(n.name, "SELECT to_regclass('patroni_probe') IS NOT NULL AS ok", cluster.database))[0]?.ok === true);
    }
    const urls = cluster.nodes.map((n) => `"http://127.0.0.1:${n.apiPort}"`).join(', ');
    proxy = await startProxy({
      nodes: cluster.nodes,
      user: cluster.users.app,
      clusterYaml: `    discovery:\n      patroni: [ ${urls} ]\n    failover:\n      write_hold: 20s\n`,
    });
  }, 120_000);

  afterAll(async () => {
    await proxy?.stop();
    await cluster?.stopAll();
  }, 30_000);

  it('writes go to the leader, reads never to the noloadbalance member; /status shows the tags', async () => {
    const leader = (await cluster.leader())!;
    expect(leader).toBe('pa0');
    await waitFor('status shows Patroni', () => status().patroni?.leader === 'pa0');
    const st = status();
    expect(st.primary).toBe('pa0');
    expect(st.patroni).toEqual({ reachable: true, leader: 'pa0' });
    const pa2 = st.nodes.find((n) => n.name === 'pa2')!;
    expect(pa2).toMatchObject({ role: 'replica', eligible: false, ineligible_reason: 'noloadbalance', patroni: { member: 'pa2', noloadbalance: true, nofailover: true } });
    expect(st.nodes.find((n) => n.name === 'pa1')).toMatchObject({ role: 'replica', eligible: true, patroni: { noloadbalance: false, nofailover: false } });

    await resetStatementStats(cluster);
    const c = new pg.Client({ connectionString: proxy.url(cluster.database) });
    await c.connect();
    for (let i = 1; i <= 50; i++) await c.query('INSERT INTO patroni_probe (id, at_port) VALUES ($1, inet_server_port()) /* steady */', [i]);
    await c.end();
    await readThroughProxy('steady_read', 200);
    const writes = await nodeStatementCalls(cluster, 'INSERT INTO patroni_probe');
    const reads = await nodeStatementCalls(cluster, 'steady_read');
    console.log('steady: writes per node', writes, 'reads per node', reads);
    expect(writes).toEqual({ pa0: 50, pa1: 0, pa2: 0 });
    expect(reads).toEqual({ pa0: 0, pa1: 200, pa2: 0 });
  });

  it('switchover (Patroni REST): writes follow the new leader, reads never reach pa2, no acknowledged write lost', async () => {
    await resetStatementStats(cluster);
    const pa1 = cluster.node('pa1');
    const acked: { id: number; port: number; at: number }[] = [];
    let writeErrors = 0;
    let running = true;
    const writer = (async () => {
      let c: pg.Client | null = null;
      for (let id = 1000; running; id++) {
        try {
          if (!c) {
            c = new pg.Client({ connectionString: proxy.url(cluster.database) });
            c.on('error', () => undefined);
            await c.connect();
          }
          const r = await c.query<{ at_port: number }>('INSERT INTO patroni_probe (id, at_port) VALUES ($1, inet_server_port()) RETURNING at_port', [id]);
          acked.push({ id, port: r.rows[0]!.at_port, at: Date.now() });
        } catch {
          writeErrors++;
          await c?.end().catch(() => undefined);
          c = null;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      await c?.end().catch(() => undefined);
    })();
    let reads = 0;
    let readErrors = 0;
    const reader = (async () => {
      const c = new pg.Client({ connectionString: proxy.url(cluster.database) });
      c.on('error', () => undefined);
      await c.connect();
      while (running) {
        try {
          await c.query('SELECT count(*) AS during_switchover FROM patroni_probe');
          reads++;
        } catch {
          readErrors++;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      await c.end().catch(() => undefined);
    })();
    // pa1's own view: when did it become writable? (a direct connection, polled back to back:
    // it turned writable between the last `true` and the first `false`)
    const watcher = new pg.Client({ host: pa1.host, port: pa1.port, user: 'postgres', password: 'postgres', database: 'postgres' });
    await watcher.connect();
    await waitFor('writes flowing', () => acked.length >= 20);
    const before = acked.length;
    const requestedAt = Date.now();
    // Not awaited: Patroni answers the POST only when the switchover is done, and pa1 must be
    // watched while it happens.
    const switched = cluster.switchover('pa0', 'pa1');
    let writableAt = 0;
    let lastInRecovery = 0;
    while (!writableAt) {
      if (Date.now() - requestedAt > 30_000) throw new Error('pa1 was not promoted within 30 s');
      const asked = Date.now();
      const r = await watcher.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
      if (!r.rows[0]!.r) writableAt = Date.now();
      else lastInRecovery = asked;
    }
    await watcher.end();
    await switched;
    await waitFor('a write on pa1', () => acked.some((a) => a.port === pa1.port));
    await waitFor('200 more writes', () => acked.filter((a) => a.port === pa1.port).length >= 200);
    running = false;
    await Promise.all([writer, reader]);

    const firstOnPa1 = acked.find((a) => a.port === pa1.port)!;
    const lastOnPa0 = [...acked].reverse().find((a) => a.port === cluster.node('pa0').port);
    console.log(
      `switchover: requested -> pa1 writable ${lastInRecovery - requestedAt}..${writableAt - requestedAt} ms; ` +
        `pa1 writable -> first write acknowledged on pa1 ${firstOnPa1.at - writableAt}..${firstOnPa1.at - lastInRecovery} ms; ` +
        `requested -> first write on pa1 ${firstOnPa1.at - requestedAt} ms; write gap ${lastOnPa0 ? firstOnPa1.at - lastOnPa0.at : NaN} ms; ` +
        `acked ${acked.length} (${before} before), write errors ${writeErrors}; reads ${reads}, read errors ${readErrors}`,
    );
    // 0. Writes follow within one health interval (100ms) of pa1 turning writable, plus the
    //    round's own probe time and this 2-core machine's scheduling (300ms of slack). pa1 turned
    //    writable after lastInRecovery, so the gap is measured from there: an upper bound.
    expect(lastInRecovery).toBeGreaterThan(0);
    expect(firstOnPa1.at - lastInRecovery).toBeLessThanOrEqual(100 + 300);
    // 1. Once a write landed on pa1, no later write went anywhere else.
    const idx = acked.indexOf(firstOnPa1);
    expect(acked.slice(idx).every((a) => a.port === pa1.port)).toBe(true);
    // 2. No acknowledged write lost: every acked id is on the new leader.
    const c = await appClient(cluster, 'pa1', cluster.database);
    const rows = await c.query<{ id: string }>('SELECT id FROM patroni_probe WHERE id >= 1000');
    await c.end();
    const present = new Set(rows.rows.map((r) => Number(r.id)));
    expect(acked.filter((a) => !present.has(a.id))).toEqual([]);
    // 3. At the backends: the noloadbalance member served no read at all, during the switchover either
    //    (counted once every member runs again: pa0 restarts as a replica).
    await cluster.waitHealthy(60_000);
    const readsPerNode = await nodeStatementCalls(cluster, 'during_switchover');
    console.log('switchover: reads per node', readsPerNode);
    expect(readsPerNode.pa2).toBe(0);
    expect(reads).toBeGreaterThan(0);
    expect(status().primary).toBe('pa1');
  });

  it('the old leader rejoins as a replica and takes the reads; pa2 still none', async () => {
    await cluster.waitHealthy(60_000);
    await waitFor('pa0 eligible again', () => status().nodes.some((n) => n.name === 'pa0' && n.role === 'replica' && n.eligible));
    await resetStatementStats(cluster);
    await readThroughProxy('rejoined_read', 100);
    const c = new pg.Client({ connectionString: proxy.url(cluster.database) });
    await c.connect();
    // Negative ids: the switchover test's writer counts up from 1000 with no upper bound.
    for (let i = 1; i <= 20; i++) await c.query('INSERT INTO patroni_probe (id, at_port) VALUES ($1, inet_server_port()) /* rejoined */', [-i]);
    await c.end();
    expect(await nodeStatementCalls(cluster, 'rejoined_read')).toEqual({ pa0: 100, pa1: 0, pa2: 0 });
    expect(await nodeStatementCalls(cluster, 'INSERT INTO patroni_probe')).toEqual({ pa0: 0, pa1: 20, pa2: 0 });
  });

  it('Patroni unreachable (REST APIs hung): roles from pg_is_in_recovery(), writes keep going to the writable node', async () => {
    const pids = cluster.nodes.map((n) => n.pid);
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    try {
      await waitFor('status says Patroni unreachable', () => status().patroni?.reachable === false, 10_000);
      expect(status().primary).toBe('pa1');
      await resetStatementStats(cluster);
      const c = new pg.Client({ connectionString: proxy.url(cluster.database) });
      await c.connect();
      for (let i = 0; i < 10; i++) await c.query('INSERT INTO patroni_probe (id, at_port) VALUES ($1, inet_server_port()) /* unreachable */', [-100 - i]);
      await c.end();
      await readThroughProxy('unreachable_read', 50);
      expect(await nodeStatementCalls(cluster, 'INSERT INTO patroni_probe')).toEqual({ pa0: 0, pa1: 10, pa2: 0 });
      // The last tags seen stay in force.
      expect(await nodeStatementCalls(cluster, 'unreachable_read')).toEqual({ pa0: 50, pa1: 0, pa2: 0 });
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    await waitFor('Patroni reachable again', () => status().patroni?.reachable === true, 10_000);
  });
});
