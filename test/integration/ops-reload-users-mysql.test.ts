import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { MariaCluster } from '../support/mariadb-cluster.js';
import { startProxy, type RunningProxy } from '../support/proxy.js';

/**
 * The MySQL side of ops-reload-users.test.ts: a password rotated on the server and in
 * the config, then reloaded. A user of its own (not `app`, which the other files and
 * the monitor use), dropped at the end.
 */
const info = inject('mariaCluster');
const cluster = MariaCluster.attach(info);
const ROT = { user: 'sy_rotate', password: 'rotate-pw-1' };
const NEW_PW = 'rotate-pw-2';
const TABLE = 'reload_users_my';

/** Per node, the server connection ids of `user` (the proxy's pooled connections). */
async function connectionIds(user: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const n of info.nodes) {
    const rows = await cluster.query<{ ID: number }>(n.name, `SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '${user}'`);
    for (const r of rows) out.add(`${n.name}/${r.ID}`);
  }
  return out;
}

function connect(p: RunningProxy, password: string): Promise<mysql.Connection> {
  return mysql.createConnection({ host: '127.0.0.1', port: p.port, user: ROT.user, password, database: info.database });
}

beforeAll(async () => {
  await cluster.query(
    info.nodes[0]!.name,
    `DROP USER IF EXISTS '${ROT.user}'@'%'; CREATE USER '${ROT.user}'@'%' IDENTIFIED BY '${ROT.password}'; ` +
      `GRANT ALL PRIVILEGES ON ${info.database}.* TO '${ROT.user}'@'%'; ` +
      `CREATE TABLE IF NOT EXISTS ${info.database}.${TABLE} (who varchar(20), n int)`,
  );
  await cluster.waitForReplication();
});

afterAll(async () => {
  await cluster.query(info.nodes[0]!.name, `DROP USER IF EXISTS '${ROT.user}'@'%'; DROP TABLE IF EXISTS ${info.database}.${TABLE}`);
  await cluster.waitForReplication();
});

describe('MySQL reload: a rotated password', () => {
  it('new logins use the new password (client and backend), a session opened before goes on over new backend connections', async () => {
    const p = await startProxy({ protocol: 'mysql', nodes: info.nodes, user: info.users.app, moreUsers: [ROT], clusterYaml: '    pool:\n      size: 4\n' });
    const opened: mysql.Connection[] = [];
    try {
      const old = await connect(p, ROT.password);
      opened.push(old);
      // The write first: the session keeps its primary connection after a write until its next statement.
      await old.query(`INSERT INTO ${TABLE} VALUES ('old', 1)`);
      for (let i = 0; i < 4; i++) await old.query(`SELECT count(*) FROM ${TABLE}`);
      const before = await connectionIds(ROT.user);
      expect(before.size).toBeGreaterThan(0);

      await cluster.query(info.nodes[0]!.name, `ALTER USER '${ROT.user}'@'%' IDENTIFIED BY '${NEW_PW}'`);
      await cluster.waitForReplication();
      writeFileSync(p.configPath, readFileSync(p.configPath, 'utf8').replace(`password: "${ROT.password}"`, `password: "${NEW_PW}"`));
      const r = await p.app.reload();
      expect(r, JSON.stringify(r)).toEqual({ ok: true, problems: [] });

      // Every pooled connection from before the reload closes.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const now = await connectionIds(ROT.user);
        if (![...before].some((id) => now.has(id))) break;
        if (Date.now() > deadline) throw new Error(`old backend connections still open: ${[...before].filter((id) => now.has(id)).join(', ')}`);
        await new Promise((res) => setTimeout(res, 50));
      }

      await expect(connect(p, ROT.password)).rejects.toMatchObject({ errno: 1045 });
      // 8 concurrent transactions on a pool of 4: new backend logins, with the new password.
      const many = await Promise.all(Array.from({ length: 8 }, () => connect(p, NEW_PW)));
      opened.push(...many);
      await Promise.all(
        many.map(async (c, i) => {
          await c.query('BEGIN');
          await c.query(`INSERT INTO ${TABLE} VALUES ('many', ?)`, [i]);
          await c.query('SELECT SLEEP(0.2)');
          await c.query('COMMIT');
          // A session keeps its primary connection after a write until its next statement: let it go.
          await c.query('SELECT 1');
        }),
      );
      // The session from before: reads and writes on connections that are not the old ones.
      for (let i = 0; i < 4; i++) {
        const [rows] = await old.query<mysql.RowDataPacket[]>('SELECT @@hostname AS h, CONNECTION_ID() AS id, @@port AS port');
        const node = info.nodes.find((n) => n.port === Number(rows[0]!.port))?.name;
        expect(before.has(`${node}/${rows[0]!.id}`)).toBe(false);
      }
      await old.query(`INSERT INTO ${TABLE} VALUES ('old', 2)`);
      const [count] = await many[0]!.query<mysql.RowDataPacket[]>(`SELECT count(*) AS n FROM ${TABLE} /* primary */ FOR UPDATE`);
      expect(Number(count[0]!.n)).toBe(10);
      expect(p.app.status().clusters[0]!.client_connections).toBe(9);
    } finally {
      for (const c of opened) await c.end().catch(() => undefined);
      await p.stop();
    }
  }, 60_000);
});
