import { describe, expect, it } from 'vitest';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { freeTcpPort } from '../support/proxy.js';

/** `switchyard demo` from the built CLI: it serves, and Ctrl-C leaves nothing running. */
describe('switchyard demo', () => {
  it('starts a cluster and the proxy, serves a query, and stops everything on SIGINT', async () => {
    const port = await freeTcpPort();
    const adminPort = await freeTcpPort();
    const mysqlPort = await freeTcpPort();
    const child = spawn(process.execPath, ['dist/cli.js', 'demo', '--port', String(port), '--mysql-port', String(mysqlPort), '--admin-port', String(adminPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    // Kept for the failure message: a demo that exits early says why on stderr.
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 90_000;
      while (!out.includes('Press Ctrl-C') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
      expect(out, `demo exited with ${child.exitCode}; stderr: ${err}`).toContain(`postgresql://app:app@127.0.0.1:${port}/app`);
      expect(out).toContain(`http://127.0.0.1:${adminPort}/`);
      const client = new pg.Client({ connectionString: `postgresql://app:app@127.0.0.1:${port}/app` });
      await client.connect();
      await client.query('CREATE TABLE demo_t (i int)');
      await client.query('INSERT INTO demo_t VALUES (1)');
      const r = await client.query('/* route=primary */ SELECT count(*)::int AS n FROM demo_t');
      expect(r.rows).toEqual([{ n: 1 }]);
      await client.end();
      // MariaDB is installed here (CI installs it): the demo proxies it too.
      expect(out).toContain(`mariadb -h 127.0.0.1 -P ${mysqlPort} -u app -papp app`);
      const my = await mysql.createConnection({ host: '127.0.0.1', port: mysqlPort, user: 'app', password: 'app', database: 'app' });
      await my.query('CREATE TABLE demo_m (i int)');
      await my.query('INSERT INTO demo_m VALUES (1)');
      const [rows] = await my.query('/* route=primary */ SELECT count(*) AS n FROM demo_m');
      expect(rows).toEqual([{ n: 1 }]);
      await my.end();
      const health = await fetch(`http://127.0.0.1:${adminPort}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(out).toContain('nothing is left running');
    const dataDirs = /data:\s+(.+)/.exec(out)![1]!.trim().split(/\s+/);
    for (const d of dataDirs) {
      expect(existsSync(d)).toBe(false);
      const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
      expect(ps).not.toContain(d);
    }
  });
});
