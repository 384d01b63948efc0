import net from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import type { TopologySnapshot } from '../../src/routing/topology.js';

/**
 * Health checks against a node that hangs (accepts TCP, never answers) and a
 * node that refuses connections. The node `fw` is a TCP forwarder in front of
 * a real replica, so it starts healthy; then it goes silent or closes.
 */
const info = inject('pgCluster');
const app = info.users.app;
const replica = info.nodes.find((n) => n.role === 'replica')!;

type Mode = 'forward' | 'silent';
class Forwarder {
  mode: Mode = 'forward';
  private readonly sockets = new Set<net.Socket>();
  readonly server = net.createServer((client) => {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => undefined);
    if (this.mode === 'silent') return; // accept and say nothing, ever
    const up = net.connect(replica.port, replica.host);
    this.sockets.add(up);
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
    // In silent mode, bytes stop flowing both ways but both sockets stay open.
    client.on('data', (d) => this.mode === 'forward' && up.write(d));
    up.on('data', (d) => this.mode === 'forward' && client.write(d));
    up.on('close', () => client.destroy());
    client.on('close', () => up.destroy());
  });
  port = 0;
  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  /** Stop listening and reset every connection: new connects are refused. */
  async refuse(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

let fw: Forwarder;
let proxy: RunningProxy;

beforeAll(async () => {
  fw = new Forwarder();
  await fw.listen();
});

afterAll(async () => {
  await proxy?.stop();
  await fw.refuse().catch(() => undefined);
});

function snapOf(p: RunningProxy): TopologySnapshot {
  return (p.app as unknown as { clusters: Map<string, { runtime: { snapshot(): TopologySnapshot } }> }).clusters.get('main')!.runtime.snapshot();
}

function fwState(p: RunningProxy) {
  return snapOf(p).nodes.find((n) => n.name === 'fw')!;
}

async function until(cond: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - t0;
}

describe('health checks (interval 100ms, timeout 1s, fall 3)', () => {
  it('a hung node (accepts TCP, never answers) is marked down by the timeout', async () => {
    const nodes = [...info.nodes, { name: 'fw', host: '127.0.0.1', port: fw.port, role: 'replica' as const }];
    proxy = await startProxy({ nodes: nodes as typeof info.nodes, user: app });
    expect(fwState(proxy).up).toBe(true);
    fw.mode = 'silent';
    const silentAt = Date.now();
    // The other nodes keep their pace while fw's checks hang: rounds do not wait for it past one interval.
    const v0 = snapOf(proxy).version;
    await new Promise((r) => setTimeout(r, 1000));
    const rounds = snapOf(proxy).version - v0;
    console.log(`rounds published in the 1s after fw went silent: ${rounds}`);
    expect(rounds).toBeGreaterThanOrEqual(6);
    await until(() => !fwState(proxy).up, 10_000);
    const ms = Date.now() - silentAt;
    console.log(`hung node marked down ${ms}ms after it went silent (fall 3 x timeout 1s)`);
    // fall checks, each cut off by the timeout, plus one interval of slack.
    expect(ms).toBeGreaterThan(2_000);
    expect(ms).toBeLessThan(3 * (1000 + 100) + 500);
    // Reads keep working on the other replicas meanwhile.
    const c = new pg.Client({ connectionString: proxy.url(info.database) });
    await c.connect();
    for (let i = 0; i < 20; i++) await c.query('SELECT 1');
    await c.end();
  }, 30_000);

  it('a refusing node is out within one check', async () => {
    fw.mode = 'forward';
    await until(() => fwState(proxy).up, 10_000);
    await fw.refuse();
    const ms = await until(() => !fwState(proxy).up, 10_000);
    console.log(`refusing node marked down ${ms}ms after it closed (interval 100ms)`);
    expect(ms).toBeLessThanOrEqual(100 + 150);
  }, 30_000);
});

describe('the monitoring connection and the hot path', () => {
  it('a monitoring connection that is killed (pg_terminate_backend) is opened and logged in again', async () => {
    const p = await startProxy({ nodes: info.nodes, user: app });
    const admin = new pg.Client({ host: replica.host, port: replica.port, user: info.users.superuser.user, password: info.users.superuser.password, database: 'postgres' });
    await admin.connect();
    try {
      const monitorPids = async () =>
        (await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'switchyard-monitor' AND client_port IS NOT NULL")).rows.map((r) => r.pid);
      // This proxy's own monitoring connection: the one that is new since it started is enough,
      // but other proxies of this run may monitor the node too, so all of them are killed.
      const before = await monitorPids();
      expect(before.length).toBeGreaterThan(0);
      await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [before]);
      const t0 = Date.now();
      let after: number[] = [];
      while (Date.now() - t0 < 10_000) {
        after = (await monitorPids()).filter((pid) => !before.includes(pid));
        if (after.length > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      console.log(`monitoring connection to ${replica.name} re-opened ${Date.now() - t0}ms after it was terminated`);
      expect(after.length).toBeGreaterThan(0);
      const node = () => snapOf(p).nodes.find((n) => n.name === replica.name)!;
      await until(() => node().up && node().lagBytes !== null, 5_000);
      const v = snapOf(p).version;
      await until(() => snapOf(p).version >= v + 3, 5_000);
      expect(node().up).toBe(true);
    } finally {
      await admin.end();
      await p.stop();
    }
  }, 30_000);

  it('a connection refused on the hot path takes the node out at once, without waiting for a check', async () => {
    const fw2 = new Forwarder();
    await fw2.listen();
    // A 30s interval: no check runs during the test, so only the hot path can see the refusal.
    const nodes = [info.nodes.find((n) => n.role === 'primary')!, { name: 'fw', host: '127.0.0.1', port: fw2.port, role: 'replica' as const }];
    const p = await startProxy({ nodes: nodes as typeof info.nodes, user: app, healthInterval: '30s', clusterYaml: '    routing:\n      max_replica_lag: { bytes: 1GB, time: 1h }\n' });
    try {
      expect(fwState(p).up).toBe(true);
      await fw2.refuse();
      const t0 = Date.now();
      const c = new pg.Client({ connectionString: p.url(info.database) });
      c.on('error', () => undefined);
      await c.connect();
      // The read finds no connection to fw; its connect is refused before anything was sent, so it
      // runs again on the primary (when_no_replica: primary) and the client sees no error.
      const r = await c.query('SELECT inet_server_port() AS port');
      expect(r.rows[0].port).toBe(nodes[0]!.port);
      const ms = Date.now() - t0;
      console.log(`hot-path refusal: fw down after ${ms}ms (health interval 30s)`);
      expect(fwState(p).up).toBe(false);
      expect(ms).toBeLessThan(5_000);
      await c.end();
    } finally {
      await p.stop();
    }
  }, 30_000);
});
