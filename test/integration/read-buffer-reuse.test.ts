import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createHash } from 'node:crypto';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { startProxy, type RunningProxy } from '../support/proxy.js';

/**
 * Backend sockets are read into one reused buffer (src/backend/socket-reads.ts). A client
 * that stops reading leaves the proxy's writes to it pending, still pointing into that
 * buffer; if the proxy read the next chunk into the same memory, the pending bytes would
 * change under the client. So: large results through a client that pauses its socket
 * mid-result, every row checked against what the server computed from its key.
 */
const pgInfo = inject('pgCluster');
const myInfo = inject('mariaCluster');
const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ROWS = 60_000;

/** Pauses `socket` a few times while the result streams in. */
async function stall(socket: { pause(): void; resume(): void }): Promise<void> {
  for (let i = 0; i < 4; i++) {
    await sleep(30);
    socket.pause();
    await sleep(150);
    socket.resume();
  }
}

describe('reused backend read buffers: bytes pending to a slow client stay intact', () => {
  let pgProxy: RunningProxy;
  let myProxy: RunningProxy;
  beforeAll(async () => {
    pgProxy = await startProxy({ protocol: 'postgres', nodes: pgInfo.nodes, user: pgInfo.users.app });
    myProxy = await startProxy({ protocol: 'mysql', nodes: myInfo.nodes, user: myInfo.users.app });
  });
  afterAll(async () => {
    await pgProxy?.stop();
    await myProxy?.stop();
  });

  it('PostgreSQL: 60,000 rows with md5 values, client paused 4 times, twice in a row on one session', async () => {
    const client = new pg.Client({ connectionString: pgProxy.url(pgInfo.database) });
    await client.connect();
    try {
      const socket = (client as unknown as { connection: { stream: { pause(): void; resume(): void } } }).connection.stream;
      for (let run = 0; run < 2; run++) {
        // The pg_sleep every 300 rows makes the server send its 8 kB output buffer at a time:
        // chunks under the client socket's 16 kB high-water mark, so a write to the paused
        // client stays pending while the proxy goes on reading (larger chunks pause the server).
        const query = client.query(`SELECT g, md5(g::text) AS h, repeat(md5(g::text), 8) AS pad, CASE WHEN g % 300 = 0 THEN pg_sleep(0.001)::text END AS z FROM generate_series(1, ${ROWS}) g`);
        await stall(socket);
        const { rows } = await query;
        expect(rows.length).toBe(ROWS);
        let bad = 0;
        for (const r of rows) if (r.h !== md5(String(r.g)) || r.pad !== r.h.repeat(8)) bad++;
        expect(bad).toBe(0);
      }
    } finally {
      await client.end();
    }
  }, 60_000);

  it('MySQL: 60,000 rows with md5 values (text and binary protocol), client paused 4 times', async () => {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: myProxy.port, user: myInfo.users.app.user, password: myInfo.users.app.password, database: myInfo.database });
    try {
      const socket = (conn as unknown as { connection: { stream: { pause(): void; resume(): void } } }).connection.stream;
      const sql = `SELECT seq AS g, MD5(seq) AS h, REPEAT(MD5(seq), 8) AS pad FROM seq_1_to_${ROWS} WHERE seq > ?`;
      for (const run of ['query', 'execute'] as const) {
        const pending = run === 'query' ? conn.query(sql, [0]) : conn.execute(sql, [0]);
        await stall(socket);
        const [rows] = (await pending) as unknown as [{ g: number; h: string; pad: string }[]];
        expect(rows.length).toBe(ROWS);
        let bad = 0;
        for (const r of rows) if (r.h !== md5(String(r.g)) || r.pad !== r.h.repeat(8)) bad++;
        expect(bad).toBe(0);
      }
    } finally {
      await conn.end();
    }
  }, 60_000);
});
