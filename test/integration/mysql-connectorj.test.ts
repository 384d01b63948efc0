import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createConnection, createServer, type AddressInfo, type Server } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MariaCluster } from '../support/mariadb-cluster.js';
import type { RunningProxy } from '../support/proxy.js';
import { PROBE_USER, delta, nodeCounters, prepareProbeUser, startMysqlProxy } from './mysql-proxy-support.js';

/**
 * MariaDB Connector/J (Debian libmariadb-java, run as `java -cp <jar> File.java`)
 * through the MySQL proxy with server-side prepared statements. Connector/J
 * asks for DEPRECATE_EOF, so its resultsets end in OK packets, not EOF.
 * Routing is checked at the backends (USER_STATISTICS of the probe user).
 */
const run = promisify(execFile);
const JAR = '/usr/share/java/mariadb-java-client.jar';
const info = inject('mariaCluster');
const cluster = MariaCluster.attach(info);
let proxy: RunningProxy;

beforeAll(async () => {
  await prepareProbeUser(info);
  await cluster.query('my0', 'DROP TABLE IF EXISTS app.cj_t; CREATE TABLE app.cj_t (id INT AUTO_INCREMENT PRIMARY KEY, v INT, s VARCHAR(40))');
  await cluster.waitForReplication();
  // eventual: reads right after a write may go to a replica, so the interleaving really crosses nodes.
  proxy = await startMysqlProxy(info, { clusterYaml: '    routing:\n      consistency: eventual\n' });
});

afterAll(async () => {
  await proxy?.stop();
});

function javaProgram(port: number, extraUrl: string): string {
  return `import java.sql.*;
public class CjCheck {
  public static void main(String[] a) throws Exception {
    String url = "jdbc:mariadb://127.0.0.1:${port}/${info.database}?useServerPrepStmts=true${extraUrl}";
    try (Connection c = DriverManager.getConnection(url, "${PROBE_USER.user}", "${PROBE_USER.password}")) {
      // 1. Interleaved prepared writes and reads (the reads name a value no row has: replicas may lag).
      PreparedStatement ins = c.prepareStatement("INSERT INTO cj_t (v, s) VALUES (?, ?)");
      PreparedStatement sel = c.prepareStatement("SELECT count(*), ? FROM cj_t WHERE v = ?");
      int reads = 0;
      for (int i = 0; i < 200; i++) {
        ins.setInt(1, 100000 + i); ins.setString(2, "row" + i);
        if (ins.executeUpdate() != 1) throw new Error("insert " + i);
        sel.setString(1, "echo" + i); sel.setInt(2, -1);
        try (ResultSet r = sel.executeQuery()) {
          r.next();
          if (r.getInt(1) == 0 && r.getString(2).equals("echo" + i) && !r.next()) reads++;
        }
      }
      // 2. A batch insert.
      for (int i = 0; i < 50; i++) { ins.setInt(1, 200000 + i); ins.setString(2, "batch" + i); ins.addBatch(); }
      int[] counts = ins.executeBatch();
      int batchOk = 0; for (int n : counts) if (n == 1 || n == Statement.SUCCESS_NO_INFO) batchOk++;
      // 3. A transaction: its own uncommitted row is visible inside it, then committed.
      c.setAutoCommit(false);
      ins.setInt(1, 300000); ins.setString(2, "tx"); ins.executeUpdate();
      PreparedStatement own = c.prepareStatement("SELECT s FROM cj_t WHERE v = ?");
      own.setInt(1, 300000);
      String seen; try (ResultSet r = own.executeQuery()) { seen = r.next() ? r.getString(1) : "none"; }
      c.commit();
      c.setAutoCommit(true);
      // 4. A multi-row prepared read: 50 batch rows back in order with their values.
      PreparedStatement range = c.prepareStatement("SELECT v, s FROM cj_t WHERE v >= ? AND v < ? ORDER BY v");
      Thread.sleep(300);
      range.setInt(1, 200000); range.setInt(2, 200050);
      int rangeOk = 0;
      try (ResultSet r = range.executeQuery()) {
        int i = 0;
        while (r.next()) { if (r.getInt(1) == 200000 + i && r.getString(2).equals("batch" + i)) rangeOk++; i++; }
      }
      // 5. A plain (text protocol) statement on the same connection.
      int text;
      try (Statement st = c.createStatement(); ResultSet r = st.executeQuery("SELECT count(*) FROM cj_t WHERE v >= 100000")) { r.next(); text = r.getInt(1); }
      System.out.println("reads=" + reads + " batch=" + batchOk + " txseen=" + seen + " range=" + rangeOk + " text=" + text);
    }
  }
}
`;
}

/**
 * A byte relay in front of the proxy that records the capability flags of the
 * client's handshake response (the first packet the client sends; 4 bytes
 * little-endian at payload offset 0), so the test knows which dialect was run.
 */
function flagRelay(target: number): Promise<{ port: number; flags: number[]; close(): Promise<void> }> {
  const flags: number[] = [];
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    let first = true;
    client.on('data', (chunk: Buffer) => {
      if (first && chunk.length >= 8) {
        first = false;
        // SSLRequest and HandshakeResponse41 both start with the 4-byte flags after the 4-byte header.
        flags.push(chunk.readUInt32LE(4));
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ port: (server.address() as AddressInfo).port, flags, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

const DEPRECATE_EOF = 1 << 24;

describe('MariaDB Connector/J through the MySQL proxy', () => {
  it('useServerPrepStmts=true: interleaved prepared reads and writes, a batch, a transaction; writes on the primary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-cj-'));
    const file = join(dir, 'CjCheck.java');
    const relay = await flagRelay(proxy.port);
    writeFileSync(file, javaProgram(relay.port, ''));
    const before = await nodeCounters(info);
    const r = await run('java', ['-cp', JAR, file], { timeout: 120_000 }).finally(() => relay.close());
    const after = await nodeCounters(info);
    // The driver did ask for DEPRECATE_EOF: resultsets and prepare answers came without EOF packets.
    expect(relay.flags.length).toBe(1);
    expect(relay.flags[0]! & DEPRECATE_EOF).toBe(DEPRECATE_EOF);
    const sel = delta(before, after, 'userSelects');
    const upd = delta(before, after, 'userUpdates');
    console.log(`[connector/j] ${r.stdout.trim()}; selects ${JSON.stringify(sel)}, updates ${JSON.stringify(upd)}`);
    expect(r.stdout.trim()).toBe('reads=200 batch=50 txseen=tx range=50 text=251');
    const [n] = await cluster.query<{ n: number }>('my0', 'SELECT count(*) AS n FROM app.cj_t WHERE v >= 100000');
    expect(Number(n!.n)).toBe(200 + 50 + 1);
    expect(upd.my1).toBe(0);
    expect(upd.my2).toBe(0);
    // 200 + transaction + range + text reads, plus the driver's own session-variables SELECT at connect.
    // With Connector/J's default jdbcCompliantTruncation=true its connect-time
    // `set autocommit=1, ..., sql_mode = concat(@@sql_mode,',STRICT_TRANS_TABLES')` reads @@sql_mode,
    // which pins the session to the primary (docs/mysql.md, Pinning): every read ran on my0 (see the log line).
    expect(sel.my0! + sel.my1! + sel.my2!).toBe(204);
  });

  it('with jdbcCompliantTruncation=false: the same program, and its reads reach the replicas', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-cj-'));
    const file = join(dir, 'CjCheck.java');
    await cluster.query('my0', 'DELETE FROM app.cj_t');
    await cluster.waitForReplication();
    writeFileSync(file, javaProgram(proxy.port, '&jdbcCompliantTruncation=false'));
    const before = await nodeCounters(info);
    const r = await run('java', ['-cp', JAR, file], { timeout: 120_000 });
    const after = await nodeCounters(info);
    const sel = delta(before, after, 'userSelects');
    const upd = delta(before, after, 'userUpdates');
    console.log(`[connector/j, jdbcCompliantTruncation=false] ${r.stdout.trim()}; selects ${JSON.stringify(sel)}, updates ${JSON.stringify(upd)}`);
    expect(r.stdout.trim()).toBe('reads=200 batch=50 txseen=tx range=50 text=251');
    expect(upd.my1).toBe(0);
    expect(upd.my2).toBe(0);
    // Only the read inside the transaction runs on the primary; every autocommit read on a replica.
    expect(sel.my0).toBe(1);
    expect(sel.my1! + sel.my2!).toBe(203);
    expect(sel.my1).toBeGreaterThan(50);
    expect(sel.my2).toBeGreaterThan(50);
  });
});
