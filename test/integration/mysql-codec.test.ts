import { describe, expect, inject, it } from 'vitest';
import { BACKEND_CAPS, connectMysql, type MysqlBackendSocket } from '../../src/backend/mysql/connect.js';
import { Cap, Com, MysqlResponseScanner, Status, framePacket, isErr, parseErr, type ScanEvent } from '../../src/protocol/mysql/index.js';
import { connectionInfoOf } from '../support/cluster-info.js';

/**
 * The MySQL codec and backend login against the real MariaDB test cluster:
 * the scanner must find the end of each real response and its status flags.
 */
const info = inject('mariaCluster');

/** Sends one command and walks the response with the scanner; returns packet count and final event. */
function command(c: MysqlBackendSocket, payload: Buffer, kind: 'result' | 'prepare' = 'result', deprecateEof = false): Promise<{ packets: number; end: ScanEvent; first: Buffer }> {
  const scanner = new MysqlResponseScanner(deprecateEof);
  scanner.begin(kind);
  return new Promise((resolve, reject) => {
    let packets = 0;
    let first: Buffer | null = null;
    const onData = (chunk: Buffer) => {
      try {
        for (const p of c.reader.push(chunk)) {
          packets++;
          first ??= Buffer.from(p.payload);
          const ev = scanner.next(p.payload);
          if (ev.kind === 'done') {
            c.socket.removeListener('data', onData);
            resolve({ packets, end: ev, first });
          }
        }
      } catch (e) {
        reject(e);
      }
    };
    c.socket.on('data', onData);
    c.socket.write(framePacket(payload, 0).bytes);
  });
}
const query = (c: MysqlBackendSocket, sql: string) => command(c, Buffer.concat([Buffer.from([Com.QUERY]), Buffer.from(sql)]));

describe('MySQL codec against MariaDB', () => {
  const login = (password?: string, capabilities?: number) => {
    const ci = connectionInfoOf(info, 'my0', 'app');
    return connectMysql({ host: ci.host, port: ci.port, user: ci.user, password: password ?? ci.password, database: ci.database, capabilities });
  };

  it('with DEPRECATE_EOF: no EOF after columns, rows end in a 0xfe OK; multi-results and prepare too', async () => {
    const c = await login(undefined, (BACKEND_CAPS | Cap.DEPRECATE_EOF) >>> 0);
    try {
      expect(c.capabilities & Cap.DEPRECATE_EOF).toBeTruthy();
      const q = (sql: string) => command(c, Buffer.concat([Buffer.from([Com.QUERY]), Buffer.from(sql)]), 'result', true);
      expect((await q('SELECT seq FROM seq_1_to_50000')).packets).toBe(1 + 1 + 50000 + 1);
      expect((await q('SELECT 1; SELECT 2, 3')).packets).toBe(4 + 5);
      const prep = await command(c, Buffer.concat([Buffer.from([Com.STMT_PREPARE]), Buffer.from('SELECT ?, 1 AS a')]), 'prepare', true);
      expect(prep.packets).toBe(1 + 1 + 2);
      expect((await q('SELECT 1')).packets).toBe(4);
    } finally {
      c.socket.destroy();
    }
  });

  it('logs in with mysql_native_password and reads autocommit status', async () => {
    const c = await login();
    try {
      expect(c.threadId).toBeGreaterThan(0);
      expect(c.serverVersion).toMatch(/MariaDB/);
      expect(c.status & Status.AUTOCOMMIT).toBeTruthy();
    } finally {
      c.socket.destroy();
    }
  });

  it('follows an AuthSwitchRequest (answering first with caching_sha2_password)', async () => {
    const ci = connectionInfoOf(info, 'my0', 'app');
    const c = await connectMysql({ ...ci, firstPlugin: 'caching_sha2_password' });
    try {
      expect((await query(c, 'SELECT 1')).packets).toBe(5);
    } finally {
      c.socket.destroy();
    }
    await expect(connectMysql({ ...ci, password: 'nope', firstPlugin: 'caching_sha2_password' })).rejects.toThrow(/1045/);
  });

  it('rejects a wrong password with the server error', async () => {
    await expect(login('wrong-password')).rejects.toThrow(/1045/);
  });

  it('scanner finds the end of resultsets, multi-results and errors, and tracks IN_TRANS', async () => {
    const c = await login();
    try {
      const big = await query(c, 'SELECT seq, REPEAT("x", 100) FROM seq_1_to_100000');
      // column count + 2 column defs + EOF + 100000 rows + EOF
      expect(big.packets).toBe(1 + 2 + 1 + 100000 + 1);
      expect(big.end).toMatchObject({ kind: 'done', error: false });
      // Other flags (e.g. 0x20 no index used) may be set; autocommit on, no transaction.
      expect(big.end.kind === 'done' && big.end.status! & (Status.AUTOCOMMIT | Status.IN_TRANS)).toBe(Status.AUTOCOMMIT);

      const multi = await query(c, 'SELECT 1; SELECT 2, 3; DO 1');
      expect(multi.packets).toBe(5 + 6 + 1);
      expect(multi.end.kind).toBe('done');

      const begin = await query(c, 'BEGIN');
      expect(begin.end.kind === 'done' && begin.end.status! & Status.IN_TRANS).toBeTruthy();
      const inTx = await query(c, 'SELECT 1');
      expect(inTx.end.kind === 'done' && inTx.end.status! & Status.IN_TRANS).toBeTruthy();
      // DDL commits implicitly: the flags say so.
      const ddl = await query(c, 'CREATE TEMPORARY TABLE IF NOT EXISTS t_codec (a int)');
      const commit = await query(c, 'COMMIT');
      expect(commit.end.kind === 'done' && commit.end.status! & Status.IN_TRANS).toBeFalsy();
      expect(ddl.end.kind).toBe('done');

      const bad = await query(c, 'SELEKT 1');
      expect(bad.end).toEqual({ kind: 'done', status: null, error: true });
      expect(isErr(bad.first) && parseErr(bad.first).errno).toBe(1064);

      const prep = await command(c, Buffer.concat([Buffer.from([Com.STMT_PREPARE]), Buffer.from('SELECT ?, ?, 1 AS a')]), 'prepare');
      // PREPARE_OK + 2 params + EOF + 3 columns + EOF
      expect(prep.packets).toBe(1 + 2 + 1 + 3 + 1);
      // The connection is still in step: a following query answers normally.
      expect((await query(c, 'SELECT 1')).packets).toBe(5);
    } finally {
      c.socket.destroy();
    }
  });
});
