import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { PgCluster } from '../support/pg-cluster.js';
import { appClient, superClient } from '../support/pg-stats.js';
import { renderConfig, startOpsProxy, waitFor, type NodeInfo, type OpsConfig, type OpsProxy } from './ops-support.js';

/**
 * Hot reload of what backend logins use (issue 8 audit): a rotated password, a removed
 * user, a node whose port changed. The proxy's pools fix these when they are made; a
 * reload must replace them (validate, build, swap, drain) and close no client connection.
 */
const info = inject('pgCluster');
const app = info.users.app;
const ROTATED = 'app-rotated-pw-8';
const PLAIN = { user: 'plainuser', password: 'plainpw' };
const TABLE = 'reload_users_t';
const cluster = PgCluster.attach(info);

/** The ops config with `users` as the users block (the first one is the monitor's login). */
function config(nodes: NodeInfo[], users: { user: string; password: string }[], c: OpsConfig): string {
  const text = renderConfig(nodes, users[0]!, c);
  const block = users.map((u) => `      - { name: ${u.user}, password: "${u.password}" }`).join('\n');
  return text.replace(/ {4}users:\n.*\n/, `    users:\n${block}\n`);
}

async function proxyClient(p: OpsProxy, u: { user: string; password: string }): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: p.port, user: u.user, password: u.password, database: info.database });
  // A server that goes away at teardown is no test failure; the assertions check every answer.
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function loginError(p: OpsProxy, u: { user: string; password: string }): Promise<string | undefined> {
  const c = new pg.Client({ host: '127.0.0.1', port: p.port, user: u.user, password: u.password, database: info.database });
  try {
    await c.connect();
    await c.end();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

/** Server time on the primary (every node runs on this machine: one clock). */
async function serverNow(): Promise<string> {
  const rows = await cluster.query<{ t: string }>(info.nodes[0]!.name, 'SELECT clock_timestamp()::text AS t');
  return rows[0]!.t;
}

/** Per node, backend connections of `user` opened before `t` (the proxy's pools, not its monitor). */
async function backendsOpenedBefore(user: string, t: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of info.nodes) {
    const rows = await cluster.query<{ n: string }>(
      n.name,
      "SELECT count(*)::text AS n FROM pg_stat_activity WHERE usename = $1 AND application_name <> 'switchyard-monitor' AND backend_start < $2::timestamptz",
      [user, t],
    );
    out[n.name] = Number(rows[0]!.n);
  }
  return out;
}

const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

async function setAppPassword(password: string): Promise<void> {
  await cluster.query(info.nodes[0]!.name, `ALTER ROLE ${app.user} PASSWORD '${password}'`);
  await cluster.waitForReplication();
}

beforeAll(async () => {
  const c = await appClient(info, info.nodes[0]!.name, info.database);
  try {
    await c.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (who text, n int)`);
    await c.query(`GRANT SELECT, INSERT ON ${TABLE} TO ${PLAIN.user}`);
  } finally {
    await c.end();
  }
  await cluster.waitForReplication();
});

afterAll(async () => {
  const c = await superClient(info, info.nodes[0]!.name, info.database);
  try {
    await c.query(`DROP TABLE IF EXISTS ${TABLE}`);
  } finally {
    await c.end();
  }
  await cluster.waitForReplication();
});

describe('reload: users and passwords', () => {
  let p: OpsProxy | undefined;
  let base: OpsConfig;
  const opened: pg.Client[] = [];
  afterAll(async () => {
    for (const c of opened) await c.end().catch(() => undefined);
    await p?.stop();
    // Other test files share the cluster: the app role gets its password back whatever happened.
    await setAppPassword(app.password);
  });

  it('a rotated password: new logins use the new one (client and backend), old sessions go on over new backend connections', async () => {
    // Lag is not what this test is about: a generous time budget keeps the replicas eligible on a loaded machine.
    const shape = { poolSize: 4, weights: { pg1: 1, pg2: 1 }, lagTime: '30s' };
    p = await startOpsProxy(info.nodes, app, shape, { watch: false });
    base = { adminPort: p.adminPort, port: p.port, ...shape };
    writeFileSync(p.configPath, config(info.nodes, [app, PLAIN], base));
    expect((await p.admin('/reload', { method: 'POST' })).status).toBe(200);

    // A session from before the rotation, with pooled connections on every node.
    const old = await proxyClient(p, app);
    opened.push(old);
    // Reads first: after its write the session reads from the primary until a replica caught up.
    for (let i = 0; i < 4; i++) await old.query(`SELECT count(*) FROM ${TABLE}`);
    await old.query(`INSERT INTO ${TABLE} VALUES ('old', 1)`);
    const t = await serverNow();
    const before = await backendsOpenedBefore(app.user, t);
    expect(before[info.nodes[0]!.name], JSON.stringify(before)).toBeGreaterThan(0);
    expect(total(before), JSON.stringify(before)).toBeGreaterThanOrEqual(2);

    // Rotate on the server, then in the config.
    await setAppPassword(ROTATED);
    writeFileSync(p.configPath, config(info.nodes, [{ user: app.user, password: ROTATED }, PLAIN], base));
    const res = await p.admin('/reload', { method: 'POST' });
    expect(res.status, await res.clone().text()).toBe(200);

    // The old pools drained: no backend connection of app opened before the reload is left.
    await waitFor('old backend connections closed', async () => total(await backendsOpenedBefore(app.user, t)) === 0);

    // Client auth: the new password logs in, the old one is refused like any wrong password.
    expect(await loginError(p, app)).toBe('28P01');
    const fresh = await proxyClient(p, { user: app.user, password: ROTATED });
    opened.push(fresh);
    expect((await fresh.query('SELECT current_user AS u')).rows[0].u).toBe(app.user);

    // Backend logins: 8 concurrent transactions on a pool of 4 need 4 new primary connections.
    const many = await Promise.all(Array.from({ length: 8 }, () => proxyClient(p!, { user: app.user, password: ROTATED })));
    opened.push(...many);
    await Promise.all(
      many.map(async (c, i) => {
        await c.query('BEGIN');
        await c.query(`INSERT INTO ${TABLE} VALUES ('many', $1)`, [i]);
        await c.query('SELECT pg_sleep(0.2)');
        await c.query('COMMIT');
      }),
    );

    // The session from before the reload goes on, reads and writes, over connections opened after it.
    await cluster.waitForReplication();
    const read = await old.query(`SELECT backend_start > $1::timestamptz AS fresh, inet_server_port() AS port FROM pg_stat_activity WHERE pid = pg_backend_pid()`, [t]);
    expect(read.rows[0].fresh).toBe(true);
    expect(read.rows[0].port).not.toBe(info.nodes[0]!.port);
    await old.query('BEGIN');
    await old.query(`INSERT INTO ${TABLE} VALUES ('old', 2)`);
    const write = await old.query(`SELECT backend_start > $1::timestamptz AS fresh, inet_server_port() AS port FROM pg_stat_activity WHERE pid = pg_backend_pid()`, [t]);
    await old.query('COMMIT');
    expect(write.rows[0]).toEqual({ fresh: true, port: info.nodes[0]!.port });
    await cluster.waitForReplication();
    expect((await old.query(`SELECT count(*)::int AS n FROM ${TABLE}`)).rows[0].n).toBe(10);
    expect(p.app.status().clusters[0]!.client_connections).toBe(1 + 1 + 8);
  }, 60_000);

  it('a removed user: new logins get the usual 28P01, its open session goes on', async () => {
    const cur = { user: app.user, password: ROTATED };
    const plain = await proxyClient(p!, PLAIN);
    opened.push(plain);
    expect((await plain.query(`INSERT INTO ${TABLE} VALUES ('plain', 1) RETURNING current_user AS u`)).rows[0].u).toBe(PLAIN.user);

    for (let i = 0; i < 4; i++) await plain.query('SELECT 1');
    const t = await serverNow();
    expect(total(await backendsOpenedBefore(PLAIN.user, t))).toBeGreaterThan(0);

    // The same reload changes pool.connect_timeout: every pool is rebuilt, the removed user's too.
    writeFileSync(p!.configPath, config(info.nodes, [cur], base).replace('      size: 4\n', '      size: 4\n      connect_timeout: 3s\n'));
    const res = await p!.admin('/reload', { method: 'POST' });
    expect(res.status, await res.clone().text()).toBe(200);
    await waitFor('old backend connections closed', async () => total(await backendsOpenedBefore(PLAIN.user, t)) === 0);

    expect(await loginError(p!, PLAIN)).toBe('28P01');
    expect(await loginError(p!, { user: 'nosuchuser', password: 'x' })).toBe('28P01');
    // The open session keeps working, reads and writes, over new backend connections.
    for (let i = 0; i < 5; i++) expect((await plain.query('SELECT current_user AS u')).rows[0].u).toBe(PLAIN.user);
    await plain.query(`INSERT INTO ${TABLE} VALUES ('plain', 2)`);
    expect(await backendsOpenedBefore(PLAIN.user, t)).toEqual(Object.fromEntries(info.nodes.map((n) => [n.name, 0])));
    // Back in the config: it logs in again.
    writeFileSync(p!.configPath, config(info.nodes, [cur, PLAIN], base));
    expect((await p!.admin('/reload', { method: 'POST' })).status).toBe(200);
    const again = await proxyClient(p!, PLAIN);
    opened.push(again);
    expect((await again.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  }, 30_000);

  it('a reload that replaces pools while clients wait for a connection: the waiters move to the new pool, none fails', async () => {
    const cur = { user: app.user, password: ROTATED };
    const clients = await Promise.all(Array.from({ length: 8 }, () => proxyClient(p!, cur)));
    opened.push(...clients);
    // 8 transactions on a pool of 4: 4 hold a connection, 4 wait in the pool.
    const runs = clients.map(async (c) => {
      await c.query('BEGIN');
      await c.query('SELECT pg_sleep(0.4)');
      await c.query(`INSERT INTO ${TABLE} VALUES ('waiters', 1)`);
      await c.query('COMMIT');
    });
    await waitFor('clients waiting in the pool', () => p!.app.status().clusters[0]!.nodes.some((n) => n.pool.waiting > 0), 5000);
    writeFileSync(p!.configPath, config(info.nodes, [cur, PLAIN], base).replace('      size: 4\n', '      size: 4\n      connect_timeout: 4s\n'));
    const res = await p!.admin('/reload', { method: 'POST' });
    expect(res.status, await res.clone().text()).toBe(200);
    const results = await Promise.allSettled(runs);
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    const rows = await cluster.query<{ n: string }>(info.nodes[0]!.name, `SELECT count(*)::text AS n FROM ${TABLE} WHERE who = 'waiters'`, [], info.database);
    expect(Number(rows[0]!.n)).toBe(8);
  }, 30_000);
});

/** A TCP forwarder to `port`, counting the connections it accepted and has open. */
async function forwarder(port: number): Promise<{ port: number; accepted: number; open: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const state = { port: 0, accepted: 0, open: 0, close: async () => undefined as void };
  const server: Server = createServer((client) => {
    state.accepted++;
    const upstream = createConnection({ host: '127.0.0.1', port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
    }
    state.open++;
    let closed = false;
    const done = () => {
      if (closed) return;
      closed = true;
      state.open--;
      client.destroy();
      upstream.destroy();
    };
    client.on('close', done);
    upstream.on('close', done);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as { port: number }).port;
  state.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      for (const s of sockets) s.destroy();
    });
  return state;
}

describe('reload: a node whose port changed', () => {
  it('drains its pools and connects to the new address; sessions opened before go on', async () => {
    const pg1 = info.nodes.find((n) => n.name === 'pg1')!;
    const fwd = await forwarder(pg1.port);
    const viaFwd = info.nodes.map((n) => (n.name === 'pg1' ? { ...n, port: fwd.port } : n));
    const cfg: Partial<OpsConfig> = { poolSize: 4, weights: { pg1: 1, pg2: 0 } };
    const p = await startOpsProxy(viaFwd, app, cfg, { watch: false });
    const clients: pg.Client[] = [];
    try {
      const old = await proxyClient(p, app);
      clients.push(old);
      for (let i = 0; i < 5; i++) expect((await old.query('SELECT inet_server_port() AS port')).rows[0].port).toBe(pg1.port);
      expect(fwd.open, 'the monitor and the pool connect through the forwarder').toBeGreaterThanOrEqual(2);
      const acceptedBefore = fwd.accepted;

      writeFileSync(p.configPath, renderConfig(info.nodes, app, { adminPort: p.adminPort, port: p.port, ...cfg }));
      const res = await p.admin('/reload', { method: 'POST' });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(p.app.status().clusters[0]!.nodes.find((n) => n.name === 'pg1')!.port).toBe(pg1.port);

      // Idle pooled connections and the monitoring connection leave the old address.
      await waitFor('no connection left through the forwarder', () => fwd.open === 0);
      await fwd.close();
      // Reads still reach pg1, now directly: from the old session and from a new one.
      for (let i = 0; i < 5; i++) expect((await old.query('SELECT inet_server_port() AS port')).rows[0].port).toBe(pg1.port);
      const fresh = await proxyClient(p, app);
      clients.push(fresh);
      for (let i = 0; i < 5; i++) expect((await fresh.query('SELECT inet_server_port() AS port')).rows[0].port).toBe(pg1.port);
      await old.query(`INSERT INTO ${TABLE} VALUES ('port', 1)`);
      expect(fwd.accepted).toBe(acceptedBefore);
      const st = p.app.status().clusters[0]!;
      expect(st.nodes.every((n) => n.up), JSON.stringify(st.nodes)).toBe(true);
      expect(st.client_connections).toBe(2);
    } finally {
      for (const c of clients) await c.end().catch(() => undefined);
      await p.stop();
      await fwd.close();
    }
  }, 60_000);
});
