import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectMysql } from '../../src/backend/mysql/connect.js';
import { MariaCluster } from '../support/mariadb-cluster.js';
import type { RunningProxy } from '../support/proxy.js';
import { connectThrough, serverIds } from './mysql-proxy-support.js';
import { startProxy } from '../support/proxy.js';

/*
 * A backend account that MariaDB authenticates with its ed25519 plugin
 * (IDENTIFIED VIA ed25519): the proxy must sign the server's nonce with the
 * key derived from the configured password, on the primary and on replicas.
 */
const info = inject('mariaCluster');
const ED_USER = { user: 'sy_ed25519', password: 'ed-25519 pw ✓' };

describe('MariaDB backends with ed25519 accounts', () => {
  let proxy: RunningProxy;

  beforeAll(async () => {
    const cluster = MariaCluster.attach(info);
    // INSTALL SONAME is not replicated: every node loads the plugin itself.
    for (const n of info.nodes) {
      const [loaded] = await cluster.query<{ n: number }>(n.name, "SELECT COUNT(*) AS n FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519'");
      if (Number(loaded?.n ?? 0) === 0) await cluster.query(n.name, "INSTALL SONAME 'auth_ed25519'");
    }
    await cluster.query(
      'my0',
      `CREATE USER IF NOT EXISTS '${ED_USER.user}'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('${ED_USER.password}'); ` +
        `GRANT ALL PRIVILEGES ON ${info.database}.* TO '${ED_USER.user}'@'%'`,
    );
    await cluster.waitForReplication();
    proxy = await startProxy({ protocol: 'mysql', nodes: info.nodes, user: info.users.app, moreUsers: [ED_USER] });
  }, 60_000);

  afterAll(async () => {
    await proxy?.stop();
  });

  it('logs in directly (auth switch to client_ed25519) and rejects a wrong password with 1045', async () => {
    const primary = info.nodes[0]!;
    const c = await connectMysql({ host: primary.host, port: primary.port, user: ED_USER.user, password: ED_USER.password, database: info.database });
    expect(c.threadId).toBeGreaterThan(0);
    c.socket.destroy();
    await expect(connectMysql({ host: primary.host, port: primary.port, user: ED_USER.user, password: ED_USER.password + 'x', database: info.database })).rejects.toThrow(/1045/);
  });

  it('a mysql2 client through the proxy writes on the primary and reads on replicas as the ed25519 user', async () => {
    const ids = await serverIds(info);
    const conn = await connectThrough(proxy, ED_USER);
    try {
      const readers = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const [rows] = await conn.query<import('mysql2').RowDataPacket[]>('SELECT @@server_id AS id');
        readers.add(ids.get(Number(rows[0]!.id)) ?? '?');
      }
      // Reads went to replicas (each of which needed its own ed25519 login), never the primary.
      expect([...readers].every((n) => n !== info.nodes[0]!.name && n !== '?')).toBe(true);
      expect(readers.size).toBeGreaterThan(0);
      // Then a write (the session reads its own writes from the primary afterwards).
      await conn.query('CREATE TABLE IF NOT EXISTS ed25519_probe (id INT PRIMARY KEY)');
      await conn.query('REPLACE INTO ed25519_probe VALUES (1)');
      const [rows] = await MariaCluster.attach(info).query<{ n: number }>('my0', `SELECT COUNT(*) AS n FROM ${info.database}.ed25519_probe WHERE id = 1`);
      expect(Number(rows?.n)).toBe(1);
    } finally {
      await conn.end();
    }
  });
});
