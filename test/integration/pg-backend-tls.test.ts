import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, chmodSync, chownSync, copyFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { PgCluster } from '../support/pg-cluster.js';
import { makeTestCa, type TestCa } from '../support/tls.js';

/**
 * TLS from the proxy to the nodes (backend_tls), on a private cluster whose nodes serve TLS
 * with a test CA's certificate for 127.0.0.1. Checked at the nodes: pg_stat_ssl says which of
 * the app user's connections are encrypted.
 */
let cluster: PgCluster;
let ca: TestCa;
let otherCa: TestCa;

beforeAll(async () => {
  ca = makeTestCa();
  otherCa = makeTestCa();
  cluster = await PgCluster.start({ replicas: 1 });
  for (const n of cluster.info.nodes) {
    const st = statSync(n.dataDir);
    for (const [from, to] of [[ca.serverCert, 'server.crt'], [ca.serverKey, 'server.key']] as const) {
      copyFileSync(from, join(n.dataDir, to));
      chownSync(join(n.dataDir, to), st.uid, st.gid);
      chmodSync(join(n.dataDir, to), 0o600);
    }
    appendFileSync(join(n.dataDir, 'postgresql.conf'), "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
    await cluster.query(n.name, 'SELECT pg_reload_conf()');
  }
  for (const n of cluster.info.nodes) {
    for (let i = 0; i < 100; i++) {
      const [r] = await cluster.query<{ ssl: string }>(n.name, 'SHOW ssl');
      if (r!.ssl === 'on') break;
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}, 90_000);

afterAll(async () => {
  await cluster?.stopAll();
  for (const c of [ca, otherCa]) if (c) rmSync(c.dir, { recursive: true, force: true });
});

/** Per node: the app user's client backends, and how many of them use TLS. */
async function appConnections(): Promise<Record<string, { all: number; tls: number }>> {
  const out: Record<string, { all: number; tls: number }> = {};
  for (const n of cluster.info.nodes) {
    const [r] = await cluster.query<{ all: string; tls: string }>(
      n.name,
      "SELECT count(*)::text AS all, count(*) FILTER (WHERE s.ssl)::text AS tls FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'app' AND a.backend_type = 'client backend'",
    );
    out[n.name] = { all: Number(r!.all), tls: Number(r!.tls) };
  }
  return out;
}

async function readsAndWrites(proxy: RunningProxy): Promise<Set<number>> {
  const c = new pg.Client({ connectionString: proxy.url(cluster.info.database) });
  await c.connect();
  await c.query('CREATE TABLE IF NOT EXISTS tls_probe (id serial primary key)');
  const ports = new Set<number>();
  for (let i = 0; i < 10; i++) {
    ports.add((await c.query<{ p: number }>('WITH w AS (INSERT INTO tls_probe DEFAULT VALUES RETURNING 1) SELECT inet_server_port() AS p FROM w')).rows[0]!.p);
    ports.add((await c.query<{ p: number }>('SELECT inet_server_port() AS p')).rows[0]!.p);
  }
  await c.end();
  return ports;
}

describe('backend_tls', () => {
  it('verify-full: every connection the proxy opens to every node is TLS, checked against the CA', async () => {
    const proxy = await startProxy({
      nodes: cluster.info.nodes,
      user: cluster.info.users.app,
      clusterYaml: `    backend_tls:\n      mode: verify-full\n      ca: ${ca.caCert}\n    routing:\n      consistency: eventual\n`,
    });
    try {
      const ports = await readsAndWrites(proxy);
      expect(ports.size).toBe(2); // the primary and the replica both served
      const conns = await appConnections();
      console.log('backend_tls verify-full: app connections per node', JSON.stringify(conns));
      for (const n of cluster.info.nodes) {
        expect(conns[n.name]!.all).toBeGreaterThan(0);
        expect(conns[n.name]!.tls).toBe(conns[n.name]!.all);
      }
    } finally {
      await proxy.stop();
    }
  }, 60_000);

  it('verify-full with a CA that did not sign the nodes\' certificate: no plaintext fallback, the client gets a clear error', async () => {
    const proxy = await startProxy({
      nodes: cluster.info.nodes,
      user: cluster.info.users.app,
      // The monitor logs in as the app user too, so the nodes never come up: do not wait for them.
      clusterYaml: `    backend_tls:\n      mode: verify-full\n      ca: ${otherCa.caCert}\n    roles: { primary: pg0 }\n`,
      waitForTopology: false,
    });
    try {
      // The health checks fail TLS verification, so no node comes up and a login is refused.
      await new Promise((r) => setTimeout(r, 500));
      expect(proxy.app.status().clusters[0]!.nodes.every((n) => !n.up)).toBe(true);
      const c = new pg.Client({ connectionString: proxy.url(cluster.info.database) });
      c.on('error', () => undefined);
      const err = await c.connect().then(() => null, (e: Error & { code?: string }) => e);
      console.log(`backend_tls with the wrong CA: ${err?.code} ${err?.message}`);
      expect(err?.code).toBe('08001');
      expect(err!.message).toMatch(/no node of cluster main is reachable: every node fails its health checks/);
      await c.end().catch(() => undefined);
      // Nothing fell back to a plain (or unverified) connection.
      const conns = await appConnections();
      for (const n of cluster.info.nodes) expect(conns[n.name]!.all).toBe(0);
    } finally {
      await proxy.stop();
    }
  }, 60_000);

  it('disable (the default): plain connections', async () => {
    const proxy = await startProxy({ nodes: cluster.info.nodes, user: cluster.info.users.app, clusterYaml: '    routing:\n      consistency: eventual\n' });
    try {
      await readsAndWrites(proxy);
      const conns = await appConnections();
      for (const n of cluster.info.nodes) {
        expect(conns[n.name]!.all).toBeGreaterThan(0);
        expect(conns[n.name]!.tls).toBe(0);
      }
    } finally {
      await proxy.stop();
    }
  }, 60_000);
});
