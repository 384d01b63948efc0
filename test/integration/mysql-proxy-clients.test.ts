import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { MariaCluster } from '../support/mariadb-cluster.js';
import type { RunningProxy } from '../support/proxy.js';
import { PROBE_USER, connectThrough, delta, nodeCounters, prepareProbeUser, serverIds, startMysqlProxy } from './mysql-proxy-support.js';

/**
 * Other real clients through the MySQL proxy: the `mariadb` command-line
 * client (libmariadb: SESSION_TRACK, no DEPRECATE_EOF), PyMySQL from Debian's
 * python3-pymysql (neither), and mysql2 for LOAD DATA LOCAL INFILE and a
 * 100,000-row streamed result. (A DEPRECATE_EOF client is covered in
 * mysql-proxy.test.ts with our own codec as the client.)
 */
const run = promisify(execFile);
const info = inject('mariaCluster');
const cluster = MariaCluster.attach(info);
let proxy: RunningProxy;
let dir: string;
let ids: Map<number, string>;

beforeAll(async () => {
  await prepareProbeUser(info);
  await cluster.query('my0', 'DROP TABLE IF EXISTS app.cli; CREATE TABLE app.cli (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(50)); DROP TABLE IF EXISTS app.loaded; CREATE TABLE app.loaded (a INT, b VARCHAR(20))');
  await cluster.waitForReplication();
  ids = await serverIds(info);
  proxy = await startMysqlProxy(info, { clusterYaml: '    routing:\n      consistency: eventual\n' });
  dir = mkdtempSync(join(tmpdir(), 'sy-mysql-clients-'));
});

afterAll(async () => {
  await proxy?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function mariadbCli(sql: string, extra: string[] = []): Promise<{ stdout: string; stderr: string }> {
  return run('mariadb', ['-h', '127.0.0.1', '-P', String(proxy.port), '-u', PROBE_USER.user, `-p${PROBE_USER.password}`, '--skip-ssl', '--batch', '--skip-column-names', ...extra, 'app', '-e', sql], { timeout: 60_000 });
}

describe('the mariadb command-line client', () => {
  it('runs queries, a transaction, a sourced file and LOAD DATA LOCAL INFILE; writes land on the primary only', async () => {
    const before = await nodeCounters(info);
    const q = await mariadbCli('SELECT 1 + 1; SELECT @@server_id');
    const [sum, sid] = q.stdout.trim().split('\n');
    expect(sum).toBe('2');
    expect(['my1', 'my2']).toContain(ids.get(Number(sid)));
    const tx = await mariadbCli("START TRANSACTION; INSERT INTO cli (v) VALUES ('cli-tx'); SELECT @@server_id; COMMIT;");
    expect(ids.get(Number(tx.stdout.trim()))).toBe('my0');
    const file = join(dir, 'script.sql');
    writeFileSync(file, "INSERT INTO cli (v) VALUES ('sourced-1');\nINSERT INTO cli (v) VALUES ('sourced-2');\nSELECT COUNT(*) FROM cli WHERE v LIKE 'sourced-%';\n");
    const src = await mariadbCli(`source ${file}`);
    expect(Number(src.stdout.trim())).toBeGreaterThanOrEqual(0); // read on a replica: replication may lag, the count is the replica's
    const data = join(dir, 'rows.tsv');
    writeFileSync(data, Array.from({ length: 1000 }, (_, i) => `${i}\trow${i}`).join('\n') + '\n');
    await mariadbCli(`LOAD DATA LOCAL INFILE '${data}' INTO TABLE loaded`, ['--local-infile=1']);
    const after = await nodeCounters(info);
    const upd = delta(before, after, 'userUpdates');
    expect(upd.my1).toBe(0);
    expect(upd.my2).toBe(0);
    expect(upd.my0).toBeGreaterThanOrEqual(3);
    const [n] = await cluster.query<{ n: number }>('my0', "SELECT (SELECT COUNT(*) FROM app.loaded) AS n");
    expect(Number(n!.n)).toBe(1000);
    const [s] = await cluster.query<{ n: number }>('my0', "SELECT COUNT(*) AS n FROM app.cli WHERE v IN ('cli-tx', 'sourced-1', 'sourced-2')");
    expect(Number(s!.n)).toBe(3);
  });
});

describe('PyMySQL (python3-pymysql)', () => {
  it('queries, parameters, a transaction and executemany; autocommit reads on replicas, its default (autocommit off) on the primary', async () => {
    const script = `
import pymysql, json, sys
port = int(sys.argv[1])
out = {}
c = pymysql.connect(host='127.0.0.1', port=port, user='${PROBE_USER.user}', password='${PROBE_USER.password}', database='app', autocommit=True)
cur = c.cursor()
ids = set()
for i in range(20):
    cur.execute('SELECT @@server_id, %s', (i,))
    sid, echo = cur.fetchone()
    assert echo == i
    ids.add(sid)
out['autocommit_read_ids'] = sorted(ids)
c.begin()
cur.execute("INSERT INTO cli (v) VALUES (%s)", ('py-tx',))
cur.execute('SELECT @@server_id')
out['tx_id'] = cur.fetchone()[0]
c.commit()
cur.executemany("INSERT INTO cli (v) VALUES (%s)", [('py-many-%d' % i,) for i in range(10)])
out['many_rowcount'] = cur.rowcount
c.close()
d = pymysql.connect(host='127.0.0.1', port=port, user='${PROBE_USER.user}', password='${PROBE_USER.password}', database='app')
cur = d.cursor()
cur.execute('SELECT @@server_id')
out['default_id'] = cur.fetchone()[0]
d.commit()
d.close()
print(json.dumps(out))
`;
    const file = join(dir, 'client.py');
    writeFileSync(file, script);
    const { stdout } = await run('/usr/bin/python3', [file, String(proxy.port)], { timeout: 60_000 });
    const out = JSON.parse(stdout) as { autocommit_read_ids: number[]; tx_id: number; many_rowcount: number; default_id: number };
    expect(new Set(out.autocommit_read_ids.map((i) => ids.get(i)))).toEqual(new Set(['my1', 'my2']));
    expect(ids.get(out.tx_id)).toBe('my0');
    expect(out.many_rowcount).toBe(10);
    expect(ids.get(out.default_id)).toBe('my0');
  });
});

describe('mysql2 streaming and LOCAL INFILE', () => {
  it('streams a 100,000-row result', async () => {
    const c = await connectThrough(proxy, PROBE_USER);
    let n = 0;
    let sum = 0;
    await new Promise<void>((resolve, reject) => {
      // The callback-style connection under the promise wrapper streams rows.
      (c as unknown as { connection: import('mysql2').Connection }).connection
        .query('SELECT seq FROM seq_1_to_100000')
        .stream()
        .on('data', (row: { seq: number }) => {
          n++;
          sum += Number(row.seq);
        })
        .on('end', resolve)
        .on('error', reject);
    });
    expect(n).toBe(100_000);
    expect(sum).toBe((100_000 * 100_001) / 2);
    await c.end();
  });

  it('sends LOAD DATA LOCAL INFILE to the primary and streams the file through', async () => {
    await cluster.query('my0', 'TRUNCATE TABLE app.loaded');
    const c = await connectThrough(proxy, PROBE_USER, {
      flags: ['+LOCAL_FILES'],
      infileStreamFactory: () => Readable.from([Buffer.from(Array.from({ length: 5000 }, (_, i) => `${i}\tm${i}`).join('\n') + '\n')]),
    } as mysql.ConnectionOptions);
    const [r] = await c.query<mysql.ResultSetHeader>({ sql: "LOAD DATA LOCAL INFILE 'ignored.tsv' INTO TABLE loaded" } as mysql.QueryOptions);
    expect(r.affectedRows).toBe(5000);
    await c.end();
    const [n] = await cluster.query<{ n: number }>('my0', 'SELECT COUNT(*) AS n FROM app.loaded');
    expect(Number(n!.n)).toBe(5000);
  });
});
