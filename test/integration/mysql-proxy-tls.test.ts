import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import type { RunningProxy } from '../support/proxy.js';
import { makeTestCa, type TestCa } from '../support/tls.js';
import { connectThrough, startMysqlProxy } from './mysql-proxy-support.js';

/** TLS termination on the MySQL listener (SSLRequest, then the handshake response over TLS). */
const info = inject('mariaCluster');
const app = info.users.app;
let proxy: RunningProxy;
let ca: TestCa;

beforeAll(async () => {
  ca = makeTestCa();
  proxy = await startMysqlProxy(info, { clusterYaml: `    tls:\n      cert: ${ca.serverCert}\n      key: ${ca.serverKey}\n      mode: require\n` });
});

afterAll(async () => {
  await proxy?.stop();
  if (ca) rmSync(ca.dir, { recursive: true, force: true });
});

describe('MySQL TLS termination', () => {
  it('logs mysql2 in over TLS (certificate verified against the test CA) and runs queries', async () => {
    const c = await connectThrough(proxy, app, { ssl: { ca: readFileSync(ca.caCert, 'utf8'), rejectUnauthorized: true } });
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT 40 + 2 AS n');
    expect(rows[0]!.n).toBe(42);
    const [big] = await c.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM seq_1_to_20000');
    expect(Number(big[0]!.n)).toBe(20000);
    await c.end();
  });

  it('refuses a client without TLS when tls.mode is require', async () => {
    const e = await connectThrough(proxy, app).then(
      () => null,
      (err: { errno: number; message: string }) => err,
    );
    expect(e?.errno).toBe(3159);
  });

  it('logs the mariadb command-line client in over TLS with the server certificate verified', async () => {
    const { stdout } = await promisify(execFile)(
      'mariadb',
      ['-h', '127.0.0.1', '-P', String(proxy.port), '-u', app.user, `-p${app.password}`, '--ssl', `--ssl-ca=${ca.caCert}`, '--ssl-verify-server-cert', '--batch', '--skip-column-names', 'app', '-e', 'SELECT 6 * 7'],
      { timeout: 60_000 },
    );
    expect(stdout.trim()).toBe('42');
  });
});
