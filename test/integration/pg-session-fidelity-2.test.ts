import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import net from 'node:net';
import pg from 'pg';
import { PgFrameReader, msg, parseCommandComplete, parseErrorOrNotice, parseReadyForQuery, type PgFrame } from '../../src/protocol/pg/index.js';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { PgCluster } from '../support/pg-cluster.js';
import { nodeStatementCalls, resetStatementStats } from '../support/pg-stats.js';

/**
 * Session fidelity, part 2 (issue 5 audit):
 *   - SQL DEALLOCATE of a protocol-level statement only forgets the client's name, and
 *     does not pin;
 *   - reads whose session effect pins (WITH HOLD cursor, SQL-level PREPARE) run on the
 *     primary, so the pin holds and the FETCH/EXECUTE that follows finds them;
 *   - statements after a Flush in an extended batch are routed with it (a write after a
 *     read never reaches a replica).
 * Routing is checked at the backends (inet_server_port(), pg_stat_statements).
 */
const info = inject('pgCluster');
const app = info.users.app;
const primaryPort = info.nodes[0]!.port;
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startProxy({ nodes: info.nodes, user: app, readOnlyListener: true, clusterYaml: '    pool:\n      size: 8\n    routing:\n      consistency: eventual\n' });
  const c = client();
  await c.connect();
  await c.query('DROP TABLE IF EXISTS fid2_t; CREATE TABLE fid2_t (id serial primary key, v int not null)');
  await c.end();
  await PgCluster.attach(info).waitForReplication();
});

afterAll(async () => {
  await proxy?.stop();
});

function client(port = proxy.port): pg.Client {
  return new pg.Client({ host: '127.0.0.1', port, user: app.user, password: app.password, database: info.database });
}

const pinned = () => proxy.app.status().clusters[0]!.pinned_sessions ?? 0;

/** What came back for one round of raw messages, up to a number of ReadyForQuery. */
interface Answer {
  types: string;
  rows: string[][];
  tags: string[];
  errors: { code: string; message: string }[];
  ready: string[];
}

/** A logged-in proxy session (node-postgres does the login) spoken to in raw protocol frames. */
class Raw {
  private readonly reader = new PgFrameReader({ maxMessageSize: 1 << 24 });
  private frames: PgFrame[] = [];
  private wake: (() => void) | null = null;
  private constructor(private readonly c: pg.Client, private readonly s: net.Socket) {
    s.removeAllListeners('data');
    s.removeAllListeners('end');
    s.removeAllListeners('close');
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      for (const f of this.reader.push(d)) this.frames.push({ ...f, payload: Buffer.from(f.payload) });
      this.wake?.();
    });
  }

  static async open(port = proxy.port): Promise<Raw> {
    const c = client(port);
    await c.connect();
    return new Raw(c, (c as unknown as { connection: { stream: net.Socket } }).connection.stream);
  }

  send(...bufs: Buffer[]): void {
    this.s.write(Buffer.concat(bufs));
  }

  /** Frames until `until` says stop (default: `readies` ReadyForQuery), within 5 s. */
  async read(opts: { readies?: number; until?: (types: string) => boolean } = {}): Promise<Answer> {
    const until = opts.until ?? ((t: string) => [...t].filter((x) => x === 'Z').length >= (opts.readies ?? 1));
    const deadline = Date.now() + 5000;
    const got: PgFrame[] = [];
    for (;;) {
      while (this.frames.length > 0) {
        got.push(this.frames.shift()!);
        if (until(got.map((f) => String.fromCharCode(f.type)).join(''))) return decode(got);
      }
      if (Date.now() > deadline) throw new Error(`timed out; got ${got.map((f) => String.fromCharCode(f.type)).join('')}`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 50);
      });
      this.wake = null;
    }
  }

  async query(sql: string): Promise<Answer> {
    this.send(msg.query(sql));
    return this.read();
  }

  close(): void {
    this.s.end(msg.terminate());
    this.s.destroy();
    void this.c;
  }
}

function decode(frames: PgFrame[]): Answer {
  const a: Answer = { types: '', rows: [], tags: [], errors: [], ready: [] };
  for (const f of frames) {
    const t = String.fromCharCode(f.type);
    a.types += t;
    if (t === 'D') {
      const n = f.payload.readInt16BE(0);
      let pos = 2;
      const row: string[] = [];
      for (let i = 0; i < n; i++) {
        const len = f.payload.readInt32BE(pos);
        pos += 4;
        row.push(len < 0 ? 'NULL' : f.payload.toString('utf8', pos, pos + len));
        pos += Math.max(0, len);
      }
      a.rows.push(row);
    } else if (t === 'C') a.tags.push(parseCommandComplete(f.payload));
    else if (t === 'E') {
      const e = parseErrorOrNotice(f.payload);
      a.errors.push({ code: e.code, message: e.message });
    } else if (t === 'Z') a.ready.push(parseReadyForQuery(f.payload));
  }
  return a;
}

/** Bind, Execute and Sync of a statement (unnamed portal). */
const run = (stmt: string) => [msg.bind('', stmt, []), msg.execute(''), msg.sync()];

describe('SQL DEALLOCATE of protocol-level statements', () => {
  it('node-postgres: a named statement, DEALLOCATE, then the name prepared again with other text', async () => {
    const before = pinned();
    const c = client();
    await c.connect();
    const r1 = await c.query({ name: 'fid2_s1', text: 'SELECT $1::int + 1 AS n, inet_server_port() AS port', values: [1] });
    expect(r1.rows[0].n).toBe(2);
    const d = await c.query('DEALLOCATE fid2_s1');
    expect(d.command).toBe('DEALLOCATE');
    // node-postgres keeps its own list of what it prepared: the application deallocated it, so drop it there too.
    delete (c as unknown as { connection: { parsedStatements: Record<string, string> } }).connection.parsedStatements.fid2_s1;
    // Against PostgreSQL itself this Parse would fail with 42P05 had the DEALLOCATE not worked.
    const ports = new Set<number>();
    for (let i = 0; i < 6; i++) {
      const r2 = await c.query({ name: 'fid2_s1', text: 'SELECT $1::int * 10 AS n, inet_server_port() AS port', values: [i] });
      expect(r2.rows[0].n).toBe(i * 10);
      ports.add(r2.rows[0].port);
      await c.query('DEALLOCATE PREPARE fid2_s1');
      delete (c as unknown as { connection: { parsedStatements: Record<string, string> } }).connection.parsedStatements.fid2_s1;
    }
    // Not pinned: the reads still go to the replicas.
    expect(ports.has(primaryPort)).toBe(false);
    expect(pinned()).toBe(before);
    await c.end();
  });

  it('raw protocol: DEALLOCATE forgets the name (Bind then fails 26000), keeps case when quoted, ALL forgets all', async () => {
    const before = pinned();
    const r = await Raw.open();
    try {
      r.send(msg.parse('s1', 'SELECT 1 AS one'), msg.parse('S_Two', 'SELECT 2 AS two'), ...run('s1'), msg.bind('', 'S_Two', []), msg.execute(''), msg.sync());
      let a = await r.read({ readies: 2 });
      expect(a.errors).toEqual([]);
      expect(a.rows).toEqual([['1'], ['2']]);
      a = await r.query('DEALLOCATE s1');
      expect(a.types).toBe('CZ');
      expect(a.tags).toEqual(['DEALLOCATE']);
      // The name is gone for the client, as after PostgreSQL's own DEALLOCATE.
      r.send(...run('s1'));
      a = await r.read();
      expect(a.errors.map((e) => e.code)).toEqual(['26000']);
      // The same name again, with other text.
      r.send(msg.parse('s1', 'SELECT 11 AS eleven'), ...run('s1'));
      a = await r.read();
      expect(a.errors).toEqual([]);
      expect(a.rows).toEqual([['11']]);
      // Quoted: the case is kept, as PostgreSQL does. Unquoted S_TWO folds to s_two: unknown, 26000 from the server.
      a = await r.query('DEALLOCATE S_TWO');
      expect(a.errors.map((e) => e.code)).toEqual(['26000']);
      a = await r.query('DEALLOCATE PREPARE "S_Two"');
      expect(a.tags).toEqual(['DEALLOCATE']);
      // In a failed transaction PostgreSQL refuses it (25P02) and keeps the statement.
      a = await r.query('BEGIN');
      a = await r.query('SELECT 1/0');
      expect(a.errors.map((e) => e.code)).toEqual(['22012']);
      a = await r.query('DEALLOCATE s1');
      expect(a.errors.map((e) => e.code)).toEqual(['25P02']);
      expect(a.ready).toEqual(['E']);
      a = await r.query('ROLLBACK');
      r.send(...run('s1'));
      a = await r.read();
      expect(a.rows).toEqual([['11']]);
      // Inside a transaction it works and the transaction goes on.
      await r.query('BEGIN');
      a = await r.query('DEALLOCATE s1');
      expect(a.tags).toEqual(['DEALLOCATE']);
      expect(a.ready).toEqual(['T']);
      await r.query('COMMIT');
      // DEALLOCATE ALL forgets every client name.
      r.send(msg.parse('a1', 'SELECT 21'), msg.parse('a2', 'SELECT 22'), msg.sync());
      a = await r.read();
      a = await r.query('DEALLOCATE ALL');
      expect(a.tags).toEqual(['DEALLOCATE ALL']);
      for (const n of ['a1', 'a2']) {
        r.send(...run(n));
        a = await r.read();
        expect(a.errors.map((e) => e.code)).toEqual(['26000']);
      }
      // And the connections kept their cached statements: another session's Parse of the same
      // text is answered from the cache, so the server sees it as prepared already (works either way).
      r.send(msg.parse('a1', 'SELECT 21'), ...run('a1'));
      a = await r.read();
      expect(a.rows).toEqual([['21']]);
      expect(pinned()).toBe(before);
    } finally {
      r.close();
    }
  });
});

describe('set_config() at session level', () => {
  it('pins the session, and the setting never reaches another client through the pool', async () => {
    const before = pinned();
    const a = client();
    await a.connect();
    await a.query("SELECT set_config('application_name', 'fid2_leak_probe', false)");
    expect(pinned()).toBe(before + 1);
    // The pinning session keeps its setting on every statement, reads and writes alike.
    for (let i = 0; i < 5; i++) {
      expect((await a.query('SHOW application_name')).rows[0].application_name).toBe('fid2_leak_probe');
      await a.query('INSERT INTO fid2_t (v) VALUES (1)');
    }
    // Other clients, many statements each so they go through many pooled connections: never see it.
    const others = Array.from({ length: 6 }, () => client());
    await Promise.all(others.map((o) => o.connect()));
    for (let i = 0; i < 10; i++) {
      for (const o of others) {
        const r = await o.query("SELECT current_setting('application_name') AS a");
        expect(r.rows[0].a).not.toBe('fid2_leak_probe');
        await o.query('INSERT INTO fid2_t (v) VALUES (2)');
        expect((await o.query("SELECT current_setting('application_name') AS a")).rows[0].a).not.toBe('fid2_leak_probe');
      }
    }
    await Promise.all(others.map((o) => o.end()));
    await a.end();
  });

  it('set_config(..., true) inside a transaction does not pin', async () => {
    const before = pinned();
    const c = client();
    await c.connect();
    await c.query('BEGIN');
    const r = await c.query("SELECT set_config('application_name', 'fid2_local', true) AS v");
    expect(r.rows[0].v).toBe('fid2_local');
    await c.query('COMMIT');
    expect(pinned()).toBe(before);
    expect((await c.query('SHOW application_name')).rows[0].application_name).not.toBe('fid2_local');
    await c.end();
  });
});

describe('reads whose session effect pins run on the primary', () => {
  it('a WITH HOLD cursor declared outside a transaction, then FETCHed', async () => {
    const before = pinned();
    const c = client();
    await c.connect();
    await c.query('DECLARE fid2_c CURSOR WITH HOLD FOR SELECT g, inet_server_port() AS port FROM generate_series(1, 7) g');
    expect(pinned()).toBe(before + 1);
    const got: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await c.query('FETCH 2 FROM fid2_c');
      for (const row of r.rows) {
        got.push(row.g);
        expect(row.port).toBe(primaryPort);
      }
    }
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await c.query('CLOSE fid2_c');
    await c.end();
  });

  it('SQL-level PREPARE of a SELECT, then EXECUTE and DEALLOCATE (passed through: the session is pinned)', async () => {
    await resetStatementStats(info);
    const before = pinned();
    const c = client();
    await c.connect();
    await c.query('PREPARE fid2_q (int) AS SELECT $1 + 100 AS n, inet_server_port() AS port');
    expect(pinned()).toBe(before + 1);
    for (let i = 0; i < 5; i++) {
      const r = await c.query(`EXECUTE fid2_q(${i})`);
      expect(r.rows[0]).toEqual({ n: 100 + i, port: primaryPort });
    }
    await c.query('DEALLOCATE fid2_q');
    await expect(c.query('EXECUTE fid2_q(1)')).rejects.toMatchObject({ code: '26000' });
    await c.end();
    const calls = await nodeStatementCalls(info, 'AS n, inet_server_port() AS port');
    expect(calls.pg1! + calls.pg2!).toBe(0);
    expect(calls.pg0!).toBeGreaterThan(0);
  });

  it('on the read-only listener a WITH HOLD cursor stays on its replica, pinned there', async () => {
    const before = pinned();
    const c = client(proxy.roPort!);
    await c.connect();
    await c.query('DECLARE fid2_rc CURSOR WITH HOLD FOR SELECT g, inet_server_port() AS port, pg_backend_pid() AS pid FROM generate_series(1, 4) g');
    expect(pinned()).toBe(before + 1);
    const seen = new Set<string>();
    const got: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await c.query('FETCH 1 FROM fid2_rc');
      for (const row of r.rows) {
        got.push(row.g);
        seen.add(`${row.port}`);
      }
    }
    expect(got).toEqual([1, 2, 3, 4]);
    expect(seen.size).toBe(1);
    expect(seen.has(String(primaryPort))).toBe(false);
    await c.end();
  });
});

describe('a Flush inside an extended batch', () => {
  const readSql = "SELECT inet_server_port() AS port, 'fid2 flush read' AS tag";
  const writeSql = 'INSERT INTO fid2_t (v) VALUES (42) RETURNING inet_server_port() AS port';

  it('read, Flush, write, Sync sent at once: both run on the primary, in one implicit transaction', async () => {
    await resetStatementStats(info);
    const r = await Raw.open();
    try {
      for (let i = 0; i < 5; i++) {
        r.send(msg.parse('', readSql), msg.bind('', '', []), msg.execute(''), msg.flush(), msg.parse('', writeSql), msg.bind('', '', []), msg.execute(''), msg.sync());
        const a = await r.read();
        expect(a.errors).toEqual([]);
        expect(a.rows.map((row) => Number(row[0]))).toEqual([primaryPort, primaryPort]);
        expect(a.tags).toEqual(['SELECT 1', 'INSERT 0 1']);
      }
      const writes = await nodeStatementCalls(info, 'INSERT INTO fid2_t');
      expect(writes).toEqual({ pg0: 5, pg1: 0, pg2: 0 });
    } finally {
      r.close();
    }
  });

  it('read, Flush, wait for its rows, then the write and Sync: the write runs, on the primary', async () => {
    const r = await Raw.open();
    try {
      r.send(msg.parse('', readSql), msg.bind('', '', []), msg.execute(''), msg.flush());
      let a = await r.read({ until: (t) => t.endsWith('C') });
      expect(a.types).toBe('12DC');
      expect(Number(a.rows[0]![0])).toBe(primaryPort);
      r.send(msg.parse('', writeSql), msg.bind('', '', []), msg.execute(''), msg.sync());
      a = await r.read();
      expect(a.errors).toEqual([]);
      expect(Number(a.rows[0]![0])).toBe(primaryPort);
      expect(a.ready).toEqual(['I']);
      // A later plain read is routed afresh (a replica): the session was not pinned.
      a = await r.query('SELECT inet_server_port()');
      expect(Number(a.rows[0]![0])).not.toBe(primaryPort);
    } finally {
      r.close();
    }
  });

  it('a SET after the Flush is recorded and follows the session', async () => {
    const r = await Raw.open();
    try {
      r.send(msg.parse('', readSql), msg.bind('', '', []), msg.execute(''), msg.flush(), msg.parse('', "SET statement_timeout = '3210ms'"), msg.bind('', '', []), msg.execute(''), msg.sync());
      let a = await r.read();
      expect(a.errors).toEqual([]);
      for (let i = 0; i < 4; i++) {
        a = await r.query("SELECT current_setting('statement_timeout'), inet_server_port()");
        expect(a.rows[0]![0]).toBe('3210ms');
      }
    } finally {
      r.close();
    }
  });

  it('postgres-style describe first (Parse, Describe, Flush) of a read stays on a replica', async () => {
    const r = await Raw.open();
    try {
      r.send(msg.parse('', readSql), msg.describe('S', ''), msg.flush());
      let a = await r.read({ until: (t) => t.endsWith('T') });
      expect(a.types).toBe('1tT');
      r.send(msg.bind('', '', []), msg.execute(''), msg.sync());
      a = await r.read();
      expect(a.errors).toEqual([]);
      expect(Number(a.rows[0]![0])).not.toBe(primaryPort);
    } finally {
      r.close();
    }
  });

  it('Parse/Bind/Describe, Flush, then Executes of that portal with Flush (fetching in pages): stays on a replica', async () => {
    const r = await Raw.open();
    try {
      r.send(msg.parse('', 'SELECT g, inet_server_port() AS port FROM generate_series(1, 5) g'), msg.bind('', '', []), msg.describe('P', ''), msg.flush());
      let a = await r.read({ until: (t) => t.endsWith('T') });
      expect(a.types).toBe('12T');
      const got: string[][] = [];
      for (let i = 0; i < 3; i++) {
        r.send(msg.execute('', 2), msg.flush());
        a = await r.read({ until: (t) => t.endsWith('s') || t.endsWith('C') });
        got.push(...a.rows);
      }
      r.send(msg.sync());
      a = await r.read();
      expect(a.errors).toEqual([]);
      expect(got.map((row) => row[0])).toEqual(['1', '2', '3', '4', '5']);
      expect(new Set(got.map((row) => Number(row[1]))).has(primaryPort)).toBe(false);
    } finally {
      r.close();
    }
  });

  it('a write after a Flush whose batch already runs on a replica fails (25006) without reaching it; the session goes on', async () => {
    const r = await Raw.open();
    try {
      r.send(msg.parse('', readSql), msg.describe('S', ''), msg.flush());
      let a = await r.read({ until: (t) => t.endsWith('T') });
      r.send(msg.parse('w1', 'INSERT INTO fid2_t (v) VALUES (-77)'), msg.bind('', 'w1', []), msg.execute(''), msg.sync());
      a = await r.read();
      expect(a.types).toBe('EZ');
      expect(a.errors.map((e) => e.code)).toEqual(['25006']);
      expect(a.ready).toEqual(['I']);
      a = await r.query('SELECT count(*) FROM fid2_t WHERE v = -77');
      expect(a.rows).toEqual([['0']]);
      r.send(msg.parse('', writeSql), ...run(''));
      a = await r.read();
      expect(a.errors).toEqual([]);
      expect(Number(a.rows[0]![0])).toBe(primaryPort);
    } finally {
      r.close();
    }
  });
});

describe('per-connection statement cache and ParameterStatus', () => {
  let small: RunningProxy;
  beforeAll(async () => {
    // One backend connection per node and a cache of 3 statements: 8 named statements must evict.
    small = await startProxy({ nodes: info.nodes, user: app, clusterYaml: '    pool:\n      size: 1\n      prepared_statements: 3\n    routing:\n      consistency: eventual\n' });
  });
  afterAll(async () => {
    await small?.stop();
  });

  it('8 named statements through a cache of 3: all answer right, and no connection holds more than 3', async () => {
    const c = client(small.port);
    await c.connect();
    for (let round = 0; round < 3; round++) {
      for (let i = 1; i <= 8; i++) {
        if (i % 2 === 0) {
          const r = await c.query({ name: `fid2_w${i}`, text: `INSERT INTO fid2_t (v) VALUES ($1) RETURNING v + ${i} AS x`, values: [round] });
          expect(r.rows[0].x).toBe(round + i);
        } else {
          const r = await c.query({ name: `fid2_r${i}`, text: `SELECT $1::int + ${i} AS x, inet_server_port() AS port`, values: [round] });
          expect(r.rows[0].x).toBe(round + i);
        }
      }
    }
    // Each node has one pooled connection, so this read and write see the connections that ran the above.
    const onReplica = await c.query("SELECT count(*)::int AS n, inet_server_port() AS port FROM pg_prepared_statements WHERE name LIKE 'sy_%'");
    expect(onReplica.rows[0].port).not.toBe(primaryPort);
    expect(onReplica.rows[0].n).toBeGreaterThan(0);
    expect(onReplica.rows[0].n).toBeLessThanOrEqual(3);
    const onPrimary = await c.query("WITH w AS (INSERT INTO fid2_t (v) VALUES (0) RETURNING 1) SELECT count(*)::int AS n, inet_server_port() AS port FROM pg_prepared_statements WHERE name LIKE 'sy_%'");
    expect(onPrimary.rows[0].port).toBe(primaryPort);
    expect(onPrimary.rows[0].n).toBeGreaterThan(0);
    expect(onPrimary.rows[0].n).toBeLessThanOrEqual(3);
    await c.end();
  });

  it('after SET application_name the client sees one ParameterStatus, and no other as statements move between nodes', async () => {
    const c = client(small.port);
    c.on('error', () => undefined);
    const seen: string[] = [];
    (c as unknown as { connection: { on(e: string, f: (m: { parameterName: string; parameterValue: string }) => void): void } }).connection.on('parameterStatus', (m) => {
      if (m.parameterName === 'application_name') seen.push(m.parameterValue);
    });
    await c.connect();
    const atLogin = seen.length;
    await c.query("SET application_name = 'fid2_ps'");
    expect(seen.slice(atLogin)).toEqual(['fid2_ps']);
    const ports = new Set<number>();
    for (let i = 0; i < 20; i++) {
      ports.add((await c.query('SELECT inet_server_port() AS port')).rows[0].port);
      await c.query('INSERT INTO fid2_t (v) VALUES (3)');
      const r = await c.query("SELECT current_setting('application_name') AS a, inet_server_port() AS port");
      expect(r.rows[0].a).toBe('fid2_ps');
      ports.add(r.rows[0].port);
    }
    ports.add(primaryPort); // the INSERTs
    expect(ports.size).toBe(3);
    // Replayed SETs on the other connections are the proxy's business: the client heard of one change only.
    expect(seen.slice(atLogin)).toEqual(['fid2_ps']);
    await c.end();
  });
});

describe('pool.mode: session, lazily', () => {
  it('a client opens its replica connection only at its first read', async () => {
    const sp = await startProxy({ nodes: info.nodes, user: app, clusterYaml: '    pool:\n      mode: session\n      size: 4\n    routing:\n      consistency: eventual\n' });
    try {
      const replicas = info.nodes.filter((n) => n.role === 'replica').map((n) => n.name);
      const replicaConns = () =>
        sp.app
          .status()
          .clusters[0]!.nodes.filter((n) => replicas.includes(n.name))
          .reduce((sum, n) => sum + n.pool.active + n.pool.idle, 0);
      const c = new pg.Client({ connectionString: sp.url(info.database) });
      await c.connect();
      for (let i = 0; i < 5; i++) await c.query('INSERT INTO fid2_t (v) VALUES (5)');
      expect(replicaConns()).toBe(0);
      const r = await c.query<{ port: number }>('SELECT inet_server_port() AS port');
      expect(r.rows[0]!.port).not.toBe(primaryPort);
      expect(replicaConns()).toBe(1);
      await c.end();
    } finally {
      await sp.stop();
    }
  });
});

describe('read retry', () => {
  it('a read inside a transaction whose connection dies is not retried: the client gets the error', async () => {
    const c = client();
    c.on('error', () => undefined);
    await c.connect();
    const retries = () => proxy.app.status().clusters[0]!.read_retries ?? 0;
    const before = retries();
    await c.query('BEGIN READ ONLY');
    const { pid, port } = (await c.query<{ pid: number; port: number }>('SELECT pg_backend_pid() AS pid, inet_server_port() AS port')).rows[0]!;
    const node = info.nodes.find((n) => n.port === port)!;
    await PgCluster.attach(info).query(node.name, 'SELECT pg_terminate_backend($1)', [pid]);
    const err = await c.query('SELECT 1').then(() => null, (e: Error & { code?: string }) => e);
    expect(err).not.toBeNull();
    expect(retries()).toBe(before);
    await c.end().catch(() => undefined);
  });
});
