import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { connectMysql } from '../../src/backend/mysql/connect.js';
import { MariaCluster } from '../support/mariadb-cluster.js';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { makeTestCa, type TestCa } from '../support/tls.js';

/**
 * backend_tls for MySQL/MariaDB nodes, on a PRIVATE MariaDB 10.11 cluster (primary + 1
 * replica) whose nodes serve TLS with a test CA's certificate for localhost/127.0.0.1.
 * Checked at the nodes: performance_schema's per-thread Ssl_cipher of every `app`
 * connection (the pools' and the topology monitor's, told apart by its program_name).
 * prefer/require against nodes without TLS use the shared cluster.
 */
const shared = inject('mariaCluster');
let cluster: MariaCluster;
let ca: TestCa;
let otherCa: TestCa;

beforeAll(async () => {
  ca = makeTestCa();
  otherCa = makeTestCa();
  cluster = await MariaCluster.start({ replicas: 1 });
  // MariaDB 10.11 reads its certificate at start only: restart each node with TLS on.
  for (const n of cluster.info.nodes) {
    await cluster.stop(n.name);
    appendFileSync(n.cnf, `ssl-cert = ${ca.serverCert}\nssl-key = ${ca.serverKey}\nssl-ca = ${ca.caCert}\n`);
    await cluster.start(n.name);
    const [r] = await cluster.query<{ v: string }>(n.name, 'SELECT @@have_ssl AS v');
    expect(r!.v).toBe('YES');
  }
  await cluster.query('my0', 'CREATE TABLE IF NOT EXISTS app.tls_probe (id INT AUTO_INCREMENT PRIMARY KEY)');
  await cluster.waitForReplication();
}, 120_000);

afterAll(async () => {
  await cluster?.stopAll();
  for (const c of [ca, otherCa]) if (c) rmSync(c.dir, { recursive: true, force: true });
});

interface AppThread {
  node: string;
  cipher: string;
  program: string;
}

/** Every `app` connection at every node of `c`: its TLS cipher ('' = plain) and its program_name. */
async function appThreads(c: MariaCluster): Promise<AppThread[]> {
  const out: AppThread[] = [];
  for (const n of c.info.nodes) {
    const rows = await c.query<{ cipher: string | null; program: string | null }>(
      n.name,
      `SELECT s.VARIABLE_VALUE AS cipher, a.ATTR_VALUE AS program
         FROM performance_schema.threads t
         LEFT JOIN performance_schema.status_by_thread s ON s.THREAD_ID = t.THREAD_ID AND s.VARIABLE_NAME = 'Ssl_cipher'
         LEFT JOIN performance_schema.session_connect_attrs a ON a.PROCESSLIST_ID = t.PROCESSLIST_ID AND a.ATTR_NAME = 'program_name'
        WHERE t.PROCESSLIST_USER = 'app'`,
    );
    for (const r of rows) out.push({ node: n.name, cipher: r.cipher ?? '', program: r.program ?? '' });
  }
  return out;
}

function summary(threads: AppThread[]): string {
  return threads.map((t) => `${t.node}:${t.program === 'switchyard-monitor' ? 'monitor' : 'pool'}:${t.cipher || 'plain'}`).sort().join(' ');
}

const proxyOn = (c: MariaCluster, clusterYaml: string, waitForTopology = true) =>
  startProxy({ protocol: 'mysql', nodes: c.info.nodes, user: c.info.users.app, clusterYaml: `${clusterYaml}    routing:\n      consistency: eventual\n`, waitForTopology });

const client = (p: RunningProxy) => mysql.createConnection({ host: '127.0.0.1', port: p.port, user: 'app', password: 'app', database: 'app' });

/** Writes and reads through the proxy; the Ssl_cipher each statement's backend connection reports (primary, replica). */
async function traffic(p: RunningProxy): Promise<{ primary: string; replica: string; servers: Set<number> }> {
  const c = await client(p);
  try {
    const servers = new Set<number>();
    for (let i = 0; i < 10; i++) {
      await c.query('INSERT INTO tls_probe VALUES ()');
      const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@server_id AS id');
      servers.add(Number(rows[0]!.id));
    }
    const q = "SELECT VARIABLE_VALUE AS v FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'";
    const [r] = await c.query<mysql.RowDataPacket[]>(q);
    const [w] = await c.query<mysql.RowDataPacket[]>(`/* route=primary */ ${q}`);
    return { primary: String(w[0]!.v), replica: String(r[0]!.v), servers };
  } finally {
    await c.end();
  }
}

/**
 * A proxy on `clusterYaml` against the TLS cluster: traffic through it must be TLS at both
 * nodes (as the proxy's backend connections report), and so must every `app` connection the
 * nodes see. Returns what it saw, after stopping the proxy.
 */
async function expectOnlyTls(clusterYaml: string): Promise<{ traffic: Awaited<ReturnType<typeof traffic>>; threads: AppThread[] }> {
  const p = await proxyOn(cluster, clusterYaml);
  try {
    const t = await traffic(p);
    expect(t.primary).not.toBe('');
    expect(t.replica).not.toBe('');
    const threads = await appThreads(cluster);
    expect(threads.length).toBeGreaterThan(2);
    expect(threads.filter((x) => x.cipher === '')).toEqual([]);
    return { traffic: t, threads };
  } finally {
    await p.stop();
  }
}

describe('backend_tls (MySQL/MariaDB nodes)', () => {
  it('verify-full with the CA: every pooled and monitor connection to every node is TLS', async () => {
    const { traffic: t, threads } = await expectOnlyTls(`    backend_tls:\n      mode: verify-full\n      ca: ${ca.caCert}\n`);
    expect([...t.servers]).toEqual([2]); // the reads went to the replica (server_id 2); the hinted statement to the primary
    console.log(`verify-full: through the proxy Ssl_cipher primary=${t.primary} replica=${t.replica}; at the nodes ${summary(threads)}`);
    for (const n of cluster.info.nodes) {
      const mine = threads.filter((x) => x.node === n.name);
      expect(mine.some((x) => x.program === 'switchyard-monitor')).toBe(true);
      expect(mine.some((x) => x.program !== 'switchyard-monitor')).toBe(true);
    }
  });

  it('disable (the default) against the same nodes: plain connections (the check above can tell)', async () => {
    const p = await proxyOn(cluster, '');
    try {
      const t = await traffic(p);
      expect([t.primary, t.replica]).toEqual(['', '']);
      const threads = await appThreads(cluster);
      expect(threads.length).toBeGreaterThan(2);
      expect(threads.filter((x) => x.cipher !== '')).toEqual([]);
    } finally {
      await p.stop();
    }
  });

  it('verify-full with a CA that did not sign the nodes\' certificate: the login fails clearly, nothing falls back to plain text', async () => {
    const n = cluster.info.nodes[0]!;
    const err = await connectMysql({ host: n.host, port: n.port, user: 'app', password: 'app', database: null, node: n.name, tls: { mode: 'verify-full', ca: otherCa.caCert } }).catch((e: Error & { code?: string }) => e);
    console.log(`verify-full, wrong CA, direct: ${(err as { code?: string }).code} ${(err as Error).message}`);
    expect(err).toMatchObject({ code: 'SWITCHYARD_BACKEND_CONNECT_FAILED' });
    expect((err as Error).message).toMatch(/^node my0 \(127\.0\.0\.1:\d+\): TLS: .*certificate/);

    const p = await proxyOn(cluster, `    backend_tls:\n      mode: verify-full\n      ca: ${otherCa.caCert}\n`, false);
    try {
      await new Promise((r) => setTimeout(r, 500));
      expect(p.app.status().clusters[0]!.nodes.every((x) => !x.up)).toBe(true);
      const e2 = await client(p).then((c) => c.end().then(() => null), (e: Error & { errno?: number }) => e);
      console.log(`verify-full, wrong CA, through the proxy: ${e2?.errno} ${e2?.message}`);
      expect(e2?.errno).toBe(2003);
      expect(e2!.message).toMatch(/TLS: .*certificate|every node fails its health checks/);
      expect(await appThreads(cluster)).toEqual([]);
    } finally {
      await p.stop();
    }
  });

  it('require without a CA encrypts without verifying', async () => {
    await expectOnlyTls('    backend_tls:\n      mode: require\n');
  });

  it('prefer against nodes that offer TLS: TLS', async () => {
    await expectOnlyTls('    backend_tls:\n      mode: prefer\n');
  });

  it('a reload from disable to verify-full replaces the pools: new connections are TLS, the old ones close', async () => {
    const p = await proxyOn(cluster, '');
    try {
      expect((await traffic(p)).primary).toBe('');
      writeFileSync(p.configPath, readFileSync(p.configPath, 'utf8').replace('    routing:\n', `    backend_tls:\n      mode: verify-full\n      ca: ${ca.caCert}\n    routing:\n`));
      const r = await p.app.reload();
      expect(r).toMatchObject({ ok: true });
      const t = await traffic(p);
      expect(t.primary).not.toBe('');
      expect(t.replica).not.toBe('');
      // Idle old connections close on the reload, the monitor's is reopened: soon nothing plain is left.
      let threads: AppThread[] = [];
      for (let i = 0; i < 50; i++) {
        threads = await appThreads(cluster);
        const monitors = threads.filter((x) => x.program === 'switchyard-monitor').length;
        if (threads.every((x) => x.cipher !== '') && monitors === cluster.info.nodes.length) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      console.log(`after the reload to verify-full: ${summary(threads)}`);
      expect(threads.filter((x) => x.cipher === '')).toEqual([]);
      expect(threads.filter((x) => x.program === 'switchyard-monitor').length).toBe(cluster.info.nodes.length);
    } finally {
      await p.stop();
    }
  });
});

describe('backend_tls against nodes without TLS (the shared cluster)', () => {
  const sharedCluster = () => MariaCluster.attach(shared);

  it('prefer: plain connections, traffic flows', async () => {
    const p = await proxyOn(sharedCluster(), '    backend_tls:\n      mode: prefer\n');
    try {
      const c = await client(p);
      await c.query('CREATE TABLE IF NOT EXISTS tls_probe (id INT AUTO_INCREMENT PRIMARY KEY)');
      await c.query('INSERT INTO tls_probe VALUES ()');
      const [rows] = await c.query<mysql.RowDataPacket[]>("SELECT VARIABLE_VALUE AS v FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'");
      expect(String(rows[0]!.v)).toBe('');
      await c.end();
      expect(p.app.status().clusters[0]!.nodes.every((n) => n.up)).toBe(true);
    } finally {
      await p.stop();
    }
  });

  it('require: a clear error, at the direct login and through the proxy', async () => {
    const n = shared.nodes[0]!;
    const err = await connectMysql({ host: n.host, port: n.port, user: 'app', password: 'app', database: null, node: n.name, tls: { mode: 'require' } }).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'SWITCHYARD_BACKEND_CONNECT_FAILED' });
    expect((err as Error).message).toMatch(/does not offer TLS \(no CLIENT_SSL in its handshake\) but backend_tls\.mode is require/);
    const p = await proxyOn(sharedCluster(), '    backend_tls:\n      mode: require\n', false);
    try {
      const e2 = await client(p).then((c) => c.end().then(() => null), (e: Error & { errno?: number }) => e);
      console.log(`require against plain nodes, through the proxy: ${e2?.errno} ${e2?.message}`);
      expect(e2?.errno).toBe(2003);
    } finally {
      await p.stop();
    }
  });
});
