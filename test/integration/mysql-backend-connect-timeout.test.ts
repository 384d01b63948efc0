import { afterEach, describe, expect, inject, it } from 'vitest';
import mysql from 'mysql2/promise';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { SilentNode } from '../support/silent-node.js';

/**
 * pool.connect_timeout for MySQL/MariaDB nodes: one deadline for TCP connect + login of
 * a backend connection (it was max(health.timeout, 5s), and 2s for the first login that
 * learns the server's version). The hung node is a listener on 127.0.0.1 that accepts
 * and never answers (test/support/silent-node.ts).
 */
const shared = inject('mariaCluster');
const TIMEOUT_MS = 1500;
const cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function proxyWith(nodes: { name: string; host: string; port: number }[], waitForTopology: boolean): Promise<RunningProxy> {
  const p = await startProxy({
    protocol: 'mysql',
    nodes,
    user: shared.users.app,
    clusterYaml: `    pool:\n      connect_timeout: ${TIMEOUT_MS}ms\n`,
    waitForTopology,
  });
  cleanup.push(() => p.stop());
  return p;
}

const client = (p: RunningProxy) => mysql.createConnection({ host: '127.0.0.1', port: p.port, user: 'app', password: 'app', database: 'app', connectTimeout: 20_000 });

async function timed<T>(f: () => Promise<T>): Promise<{ ms: number; error: (Error & { errno?: number }) | null }> {
  const t0 = performance.now();
  const error = await f().then(() => null, (e: Error & { errno?: number }) => e);
  return { ms: performance.now() - t0, error };
}

describe('pool.connect_timeout (MySQL)', () => {
  it('a node that accepts and never answers: the client login fails after connect_timeout, the proxy stays up', async () => {
    const silent = await SilentNode.start();
    cleanup.push(() => silent.close());
    const p = await proxyWith([{ name: 'mute', host: '127.0.0.1', port: silent.port }], false);
    for (let round = 0; round < 2; round++) {
      const r = await timed(() => client(p).then((c) => c.end()));
      console.log(`silent node, login ${round + 1}: ${r.error?.errno} ${r.error?.message} after ${Math.round(r.ms)}ms`);
      expect(r.error?.errno).toBe(2003);
      expect(r.error!.message).toMatch(new RegExp(`node mute \\(127\\.0\\.0\\.1:${silent.port}\\): login timed out after ${TIMEOUT_MS}ms`));
      expect(r.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(r.ms).toBeLessThan(TIMEOUT_MS + 400);
    }
    expect(silent.acceptedWhileSilent).toBeGreaterThanOrEqual(2);
    const health = await fetch(`http://127.0.0.1:${p.adminPort}/healthz`);
    expect(health.status).toBe(200);
  });

  it('a pooled connection to a node that stopped answering: the borrower fails after connect_timeout; open sessions go on', async () => {
    const my0 = shared.nodes.find((n) => n.role === 'primary')!;
    const node = await SilentNode.start({ host: my0.host, port: my0.port });
    cleanup.push(() => node.close());
    const p = await proxyWith([{ name: 'fwd', host: '127.0.0.1', port: node.port }], true);
    // Session A holds the pool's only connection in a transaction; the monitor's connection stays open too.
    const a = await client(p);
    cleanup.push(() => a.end().catch(() => undefined));
    await a.query('CREATE TABLE IF NOT EXISTS connect_timeout_probe (id INT PRIMARY KEY)');
    await a.query('BEGIN');
    await a.query('REPLACE INTO connect_timeout_probe VALUES (1)');
    node.hang();
    // Session B needs a new backend connection: its login's backend check waits for it.
    const r = await timed(() => client(p).then((c) => c.end()));
    console.log(`pooled connect to a hung node: ${r.error?.errno} ${r.error?.message} after ${Math.round(r.ms)}ms; ${node.acceptedWhileSilent} connection(s) accepted while hung`);
    expect(r.error).not.toBeNull();
    expect(r.error!.message).toMatch(new RegExp(`timed out after ${TIMEOUT_MS}ms`));
    expect(r.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(r.ms).toBeLessThan(TIMEOUT_MS + 400);
    expect(node.acceptedWhileSilent).toBeGreaterThanOrEqual(1);
    // A's session is untouched.
    await a.query('COMMIT');
    const [rows] = await a.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM connect_timeout_probe WHERE id = 1');
    expect(Number(rows[0]!.n)).toBe(1);
    expect((await fetch(`http://127.0.0.1:${p.adminPort}/healthz`)).status).toBe(200);
  });
});
