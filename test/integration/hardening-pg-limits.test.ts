import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import net from 'node:net';
import pg from 'pg';
import { msg } from '../../src/protocol/pg/index.js';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { superClient } from '../support/pg-stats.js';
import { proxyChildForSuite, rssOf } from '../support/proxy-child.js';

/**
 * Issue 10, item 2 (PostgreSQL): every limit against the real test cluster.
 * max_client_connections, max_message_size, auth_timeout (silent and slowloris
 * clients), client_idle_timeout, a backend that accepts TCP and never answers,
 * and a slow reader of a large result (proxy RSS, measured in a child process).
 * No speed assertions: waits are bounded only so that a hang fails instead of
 * blocking the run; the times seen are printed.
 */
const info = inject('pgCluster');
const app = info.users.app;
const proxies: RunningProxy[] = [];

afterAll(async () => {
  for (const p of proxies) await p.stop();
});

async function proxyWith(topYaml: string, clusterYaml = '', nodes: { name: string; host: string; port: number }[] = info.nodes): Promise<RunningProxy> {
  const p = await startProxy({ nodes, user: app, topYaml, clusterYaml });
  proxies.push(p);
  return p;
}

interface Watched {
  client: pg.Client;
  /** Errors the client emitted outside a query (a FATAL while idle). */
  errors: (Error & { code?: string })[];
  ended: Promise<void>;
  isEnded(): boolean;
  /** performance.now() at 'end'. */
  endedAt(): number;
}

async function connect(port: number): Promise<Watched> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: app.user, password: app.password, database: info.database });
  const errors: (Error & { code?: string })[] = [];
  let ended = false;
  let endedAt = 0;
  client.on('error', (e) => errors.push(e));
  const endedP = new Promise<void>((resolve) =>
    client.once('end', () => {
      ended = true;
      endedAt = performance.now();
      resolve();
    }),
  );
  await client.connect();
  return { client, errors, ended: endedP, isEnded: () => ended, endedAt: () => endedAt };
}

async function loginError(port: number): Promise<{ code?: string; message: string } | null> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: app.user, password: app.password, database: info.database });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.end();
    return null;
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
}

/** Resolves `p`, or rejects after `ms` so that a hang fails the test instead of stalling it. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms}ms`)), ms)))]).finally(() => clearTimeout(t));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(50);
  }
  return check();
}

/** A raw TCP client: what it received, and when the proxy closed it. */
function raw(port: number): { socket: net.Socket; received: () => Buffer; closed: Promise<number>; isClosed: () => boolean } {
  const socket = net.connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  const t0 = performance.now();
  let closed = false;
  socket.on('data', (d) => chunks.push(d));
  socket.on('error', () => undefined);
  const closedP = new Promise<number>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve(performance.now() - t0);
    }),
  );
  return { socket, received: () => Buffer.concat(chunks), closed: closedP, isClosed: () => closed };
}

/** The SQLSTATE of the first ErrorResponse in `buf`, if any. */
function sqlState(buf: Buffer): string | null {
  if (buf[0] !== 0x45) return null;
  const m = /\0C([0-9A-Z]{5})\0/.exec(buf.toString('latin1'));
  return m ? m[1]! : null;
}

function poolActive(p: RunningProxy, node: string): number {
  return p.app.status().clusters[0]!.nodes.find((n) => n.name === node)!.pool.active;
}

function clientConnections(p: RunningProxy): number {
  return (p.app.status().clusters[0] as unknown as { client_connections: number }).client_connections;
}

describe('max_client_connections', () => {
  it('the extra client gets 53300; admitted sessions (one mid-transaction) keep working; a freed slot is reusable', async () => {
    const p = await proxyWith('limits:\n  max_client_connections: 3\n');
    const admitted = [await connect(p.port), await connect(p.port), await connect(p.port)];
    await admitted[0]!.client.query('BEGIN');
    await admitted[0]!.client.query('SELECT 1');
    const refused = await loginError(p.port);
    expect(refused).toMatchObject({ code: '53300' });
    expect(refused!.message).toMatch(/too many clients/);
    // The refusal touched nobody else: the open transaction is still open and usable.
    const tx = await admitted[0]!.client.query('SELECT now() = statement_timestamp() AS fresh, txid_current_if_assigned() IS NULL AS no_xid');
    expect(tx.rows[0]).toMatchObject({ fresh: false });
    await admitted[0]!.client.query('COMMIT');
    for (const a of admitted) expect((await a.client.query('SELECT 41 + 1 AS v')).rows[0].v).toBe(42);
    for (const a of admitted) expect(a.errors).toEqual([]);
    // A slot freed by a client leaving is given to the next one.
    await admitted[2]!.client.end();
    expect(await until(() => clientConnections(p) === 2, 5000)).toBe(true);
    const next = await connect(p.port);
    expect((await next.client.query('SELECT 1 AS v')).rows[0].v).toBe(1);
    expect(await loginError(p.port)).toMatchObject({ code: '53300' });
    await Promise.all([admitted[0]!.client.end(), admitted[1]!.client.end(), next.client.end()]);
    expect(await until(() => clientConnections(p) === 0, 5000)).toBe(true);
  });
});

describe('max_client_connections counts unauthenticated connections', () => {
  it('silent connections hold slots until auth_timeout closes them; then logins work again', async () => {
    const p = await proxyWith('limits:\n  max_client_connections: 3\n  auth_timeout: 1500ms\n');
    const silent = [raw(p.port), raw(p.port), raw(p.port)];
    await Promise.all(silent.map((r) => new Promise((resolve) => r.socket.once('connect', resolve))));
    await sleep(100);
    // All three slots are taken by clients that have not even sent a StartupMessage.
    expect(await loginError(p.port)).toMatchObject({ code: '53300' });
    await within(Promise.all(silent.map((r) => r.closed)), 10_000, 'silent clients closed');
    expect(await loginError(p.port)).toBeNull();
    // A CancelRequest takes a slot only for its own short life.
    for (let i = 0; i < 5; i++) {
      const r = raw(p.port);
      const cancel = Buffer.alloc(16);
      cancel.writeInt32BE(16, 0);
      cancel.writeInt32BE(80877102, 4);
      r.socket.write(cancel);
      await within(r.closed, 5000, 'cancel request closed');
    }
    expect(await loginError(p.port)).toBeNull();
  });
});

describe('max_message_size and auth_timeout', () => {
  let p: RunningProxy;
  beforeAll(async () => {
    p = await proxyWith('limits:\n  max_message_size: 64kB\n  auth_timeout: 1500ms\n');
  });

  it('a query over the limit: FATAL 08P01 and close; one under it works; another session is unaffected', async () => {
    const bystander = await connect(p.port);
    await bystander.client.query('BEGIN');
    const small = await connect(p.port);
    const ok = await small.client.query(`SELECT length('${'x'.repeat(60_000)}') AS n`);
    expect(ok.rows[0].n).toBe(60_000);
    const big = await connect(p.port);
    const err = await big.client.query(`SELECT length('${'x'.repeat(100_000)}')`).then(
      () => null,
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).toBe('08P01');
    expect(err?.message).toMatch(/65536|too large|exceeds/i);
    await within(big.ended, 5000, 'oversized client closed');
    expect((await bystander.client.query('SELECT 7 AS v')).rows[0].v).toBe(7);
    await bystander.client.query('COMMIT');
    await Promise.all([bystander.client.end(), small.client.end()]);
  });

  it('a frame header announcing 100MB is refused before its body: the client never has to send it', async () => {
    const c = await connect(p.port);
    const stream = (c.client as unknown as { connection: { stream: net.Socket } }).connection.stream;
    const header = Buffer.alloc(5);
    header[0] = 0x51; // Query
    header.writeInt32BE(100 * 1024 * 1024, 1);
    stream.write(Buffer.concat([header, Buffer.from('SELECT ')]));
    await within(c.ended, 5000, 'announced-100MB client closed');
    expect(c.errors[0]?.code).toBe('08P01');
  });

  it('a startup packet over the limit during login: FATAL 08P01 and close', async () => {
    const r = raw(p.port);
    const len = Buffer.alloc(4);
    len.writeInt32BE(10 * 1024 * 1024);
    r.socket.write(len);
    await within(r.closed, 5000, 'oversized startup closed');
    expect(sqlState(r.received())).toBe('08P01');
  });

  it('silent and slowloris clients are closed after auth_timeout (FATAL 08006) while a normal client logs in', async () => {
    const before = clientConnections(p);
    const silent = raw(p.port);
    // Slowloris 1: the startup packet, one byte every 250ms (a 42-byte packet would take ~10s).
    const startup = msg.startupMessage({ user: app.user, database: info.database });
    const loris = raw(p.port);
    let sent = 0;
    const dribble = setInterval(() => {
      if (sent < startup.length && !loris.isClosed()) loris.socket.write(startup.subarray(sent, ++sent));
    }, 250);
    // Slowloris 2: a complete startup packet, then nothing during SCRAM.
    const stalled = raw(p.port);
    stalled.socket.write(startup);
    try {
      const normal = await connect(p.port);
      expect((await normal.client.query('SELECT 1 AS v')).rows[0].v).toBe(1);
      const [tSilent, tLoris, tStalled] = await within(Promise.all([silent.closed, loris.closed, stalled.closed]), 10_000, 'auth_timeout closes');
      // The dribbler was cut off with most of its packet still unsent: dribbling does not extend the deadline.
      expect(sent).toBeLessThan(startup.length);
      for (const r of [silent, loris, stalled]) expect(sqlState(r.received().subarray(r.received().indexOf(0x45)))).toBe('08006');
      // The stalled one had been asked for SCRAM first (AuthenticationSASL, 'R').
      expect(stalled.received()[0]).toBe(0x52);
      console.log(`auth_timeout 1500ms: silent closed after ${Math.round(tSilent)}ms, slowloris after ${Math.round(tLoris)}ms (${sent}/${startup.length} bytes sent), stalled SCRAM after ${Math.round(tStalled)}ms`);
      // The normal session outlived them all.
      expect((await normal.client.query('SELECT 2 AS v')).rows[0].v).toBe(2);
      await normal.client.end();
      // Slots taken at the startup packet were all given back.
      expect(await until(() => clientConnections(p) === before, 5000)).toBe(true);
    } finally {
      clearInterval(dribble);
    }
  });
});

describe('client_idle_timeout', () => {
  let p: RunningProxy;
  beforeAll(async () => {
    p = await proxyWith('limits:\n  client_idle_timeout: 1s\n', '    pool:\n      size: 4\n');
    const c = await superClient(info, 'pg0', info.database);
    await c.query(`DROP TABLE IF EXISTS idle_t; CREATE TABLE idle_t (id int); GRANT ALL ON idle_t TO ${app.user}`);
    await c.end();
  });

  it('an idle session is closed with FATAL 57P05; a session that keeps talking or waits for a long query is not', async () => {
    const idle = await connect(p.port);
    await idle.client.query('SELECT 1');
    const idleSince = performance.now();
    const busy = await connect(p.port);
    const chatty = await connect(p.port);
    // pg_sleep(2.5) is 2.5 timeouts of waiting for its own answer: not idle.
    const long = busy.client.query('SELECT pg_sleep(2.5), 1 AS v');
    for (let i = 0; i < 8; i++) {
      await chatty.client.query('SELECT 1');
      await sleep(300);
    }
    expect((await long).rows[0].v).toBe(1);
    // The chatty session talked every 300ms for 2.4s: still open, no error; done with it.
    expect(chatty.isEnded()).toBe(false);
    expect(chatty.errors).toEqual([]);
    await chatty.client.end();
    await within(idle.ended, 5000, 'idle session closed');
    const tIdle = idle.endedAt() - idleSince;
    expect(idle.errors[0]?.code).toBe('57P05');
    expect(idle.errors[0]?.message).toMatch(/client_idle_timeout/);
    expect(busy.isEnded()).toBe(false);
    // After its long query the busy session is idle too, and goes the same way.
    await within(busy.ended, 5000, 'busy session closed once idle');
    expect(busy.errors[0]?.code).toBe('57P05');
    console.log(`client_idle_timeout 1s: idle session closed ~${Math.round(tIdle)}ms after its last query`);
  });

  it('idle in a transaction: closed, the transaction rolled back and its backend connection returned', async () => {
    const c = await connect(p.port);
    await c.client.query('BEGIN');
    await c.client.query('INSERT INTO idle_t VALUES (1)');
    expect(poolActive(p, 'pg0')).toBe(1);
    await within(c.ended, 5000, 'idle-in-transaction session closed');
    expect(c.errors[0]?.code).toBe('57P05');
    expect(c.errors[0]?.message).toMatch(/transaction/);
    expect(await until(() => poolActive(p, 'pg0') === 0, 5000)).toBe(true);
    const s = await superClient(info, 'pg0', info.database);
    try {
      expect((await s.query('SELECT count(*)::int AS n FROM idle_t')).rows[0].n).toBe(0);
      const open = await s.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND state LIKE 'idle in transaction%'`, [app.user]);
      expect(open.rows[0].n).toBe(0);
    } finally {
      await s.end();
    }
  });

  it('a pinned session (temp table) is closed and its server connection ended, not returned', async () => {
    const c = await connect(p.port);
    await c.client.query('CREATE TEMP TABLE idle_tmp (x int)');
    const pid = (await c.client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    await within(c.ended, 5000, 'pinned session closed');
    expect(c.errors[0]?.code).toBe('57P05');
    expect(await until(() => poolActive(p, 'pg0') === 0, 5000)).toBe(true);
    const s = await superClient(info, 'pg0', info.database);
    try {
      const gone = await until(async () => (await s.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0].n === 0, 5000);
      expect(gone).toBe(true);
    } finally {
      await s.end();
    }
  });

  it('pool.mode session: the connections a session holds go back to the pool when it is closed idle', async () => {
    const ps = await proxyWith('limits:\n  client_idle_timeout: 1s\n', '    pool:\n      mode: session\n      size: 4\n');
    const c = await connect(ps.port);
    await c.client.query('INSERT INTO idle_t VALUES (2)');
    await c.client.query("SELECT 'replica read'");
    const held = () => ps.app.status().clusters[0]!.nodes.reduce((n, x) => n + x.pool.active, 0);
    expect(held()).toBeGreaterThanOrEqual(1);
    await within(c.ended, 5000, 'session-mode client closed');
    expect(c.errors[0]?.code).toBe('57P05');
    expect(await until(() => held() === 0, 5000)).toBe(true);
  });
});

/**
 * A node stand-in on 127.0.0.1: forwards to a real replica until hang(), then
 * accepts TCP connections and never answers, and freezes the ones it was
 * forwarding (a hung host, as far as switchyard can tell).
 */
class HangingNode {
  private readonly sockets = new Set<net.Socket>();
  private hung = false;
  /** Connections accepted after hang(): they got no byte. */
  acceptedWhileHung = 0;
  private constructor(private readonly server: net.Server, readonly port: number) {}

  static async start(target: { host: string; port: number }): Promise<HangingNode> {
    let node!: HangingNode;
    const server = net.createServer((client) => {
      node.sockets.add(client);
      client.on('error', () => undefined);
      client.once('close', () => node.sockets.delete(client));
      if (node.hung) {
        node.acceptedWhileHung++;
        return;
      }
      const upstream = net.connect(target);
      node.sockets.add(upstream);
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
    node = new HangingNode(server, port);
    return node;
  }

  hang(): void {
    this.hung = true;
    for (const s of this.sockets) {
      s.unpipe();
      s.pause();
    }
  }

  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }
}

describe('backend connect and login timeouts', () => {
  it('a replica that accepts TCP and never answers: connects that get no answer within pool.connect_timeout are routed again (nothing was sent), none hangs; the session goes on', async () => {
    const pg1 = info.nodes.find((n) => n.name === 'pg1')!;
    const pg0 = info.nodes.find((n) => n.name === 'pg0')!;
    const fake = await HangingNode.start(pg1);
    try {
      const p = await proxyWith('', '    pool:\n      connect_timeout: 1500ms\n', [pg0, { name: 'pgx', host: '127.0.0.1', port: fake.port }]);
      // Clients log in before the hang; their logins borrowed only pg0 (primary first).
      const clients = await Promise.all([connect(p.port), connect(p.port), connect(p.port)]);
      fake.hang();
      const t0 = performance.now();
      const outcomes = await within(
        Promise.all(
          clients.map((c) =>
            c.client.query('SELECT inet_server_port() AS port').then(
              (r) => ({ port: r.rows[0].port as number, ms: performance.now() - t0 }),
              (e: Error & { code?: string }) => ({ code: e.code, message: e.message, ms: performance.now() - t0 }),
            ),
          ),
        ),
        30_000,
        'reads during a backend hang',
      );
      // The stand-in was up when the reads started: they went there and its logins hung until
      // pool.connect_timeout; nothing had been sent, so each read was routed again, to pg0.
      for (const o of outcomes) expect(o).toMatchObject({ port: pg0.port });
      expect(outcomes.some((o) => o.ms >= 1400)).toBe(true);
      expect(fake.acceptedWhileHung).toBeGreaterThan(0);
      expect(await until(() => p.app.status().clusters[0]!.nodes.find((n) => n.name === 'pgx')!.up === false, 10_000)).toBe(true);
      // Same sessions, no reconnect: reads now go to the primary (when_no_replica: primary).
      for (const c of clients) expect((await within(c.client.query('SELECT inet_server_port() AS port'), 10_000, 'read after the hang')).rows[0].port).toBe(pg0.port);
      // Logins keep working, and no connection to the hung node is left counted.
      const late = await connect(p.port);
      expect((await late.client.query('SELECT 1 AS v')).rows[0].v).toBe(1);
      expect(poolActive(p, 'pgx')).toBe(0);
      for (const c of [...clients, late]) expect(c.errors).toEqual([]);
      await Promise.all([...clients, late].map((c) => c.client.end()));
      console.log(`backend hang: read outcomes ${outcomes.map((o) => ('port' in o ? `ok@${o.port}` : o.code) + ` after ${Math.round(o.ms)}ms`).join(', ')}; ${fake.acceptedWhileHung} connections accepted by the hung node`);
    } finally {
      fake.close();
    }
  });
});

describe('backpressure', () => {
  const proxy = proxyChildForSuite({ protocol: 'postgres', nodes: info.nodes, user: app, dirPrefix: 'switchyard-rss-' });

  it('a client reading a large result slowly keeps the proxy RSS bounded (proxy in a child process)', async () => {
    const rows = Number(process.env.SLOW_READER_ROWS ?? 1_000_000);

    const c = await connect(proxy.port);
    // Warm-up: the same path once with a small result, so lazily built state is counted in the baseline.
    await c.client.query(`SELECT repeat('x', 1000) FROM generate_series(1, 5000)`);
    const baseline = rssOf(proxy.pid);
    const stream = (c.client as unknown as { connection: { stream: net.Socket } }).connection.stream;
    stream.pause();
    stream.removeAllListeners('data');
    let received = 0;
    let tail = Buffer.alloc(0);
    stream.on('data', (d: Buffer) => {
      received += d.length;
      tail = Buffer.concat([tail, d.subarray(-6)]).subarray(-6);
    });
    const done = () => tail.length === 6 && tail[0] === 0x5a && tail.readInt32BE(1) === 5;
    stream.write(msg.query(`SELECT repeat('x', 1000) FROM generate_series(1, ${rows})`));

    // 1. The client reads nothing for 3s: an unbounded proxy would take the whole result in.
    let peak = baseline;
    for (let i = 0; i < 12; i++) {
      await sleep(250);
      peak = Math.max(peak, rssOf(proxy.pid));
    }
    const stalledReceived = received;
    const afterStall = rssOf(proxy.pid);
    // 2. Then it reads in bursts (40ms on, 10ms off) to the end: bounded by a deadline, not a speed claim.
    const t0 = performance.now();
    const deadline = Date.now() + 150_000;
    while (!done() && Date.now() < deadline) {
      stream.resume();
      await sleep(40);
      stream.pause();
      peak = Math.max(peak, rssOf(proxy.pid));
      await sleep(10);
    }
    const seconds = (performance.now() - t0) / 1000;
    expect(done()).toBe(true);
    // Every row came through: ~1,011 bytes per DataRow (1,000 + headers).
    expect(received).toBeGreaterThan(rows * 1000);
    const mb = (b: number) => Math.round(b / 1048576);
    console.log(
      `slow reader: ${mb(received)}MB result; proxy RSS baseline ${mb(baseline)}MB, after a 3s stall ${mb(afterStall)}MB (client had ${mb(stalledReceived)}MB), peak ${mb(peak)}MB (growth ${mb(peak - baseline)}MB) over ${seconds.toFixed(1)}s of bursty reading`,
    );
    expect(peak - baseline).toBeLessThan(200 * 1048576);
    stream.destroy();
  });
  // Before PgSession.blockCopyUntilDrained, COPY data went to the server connection without a look
  // at its buffer: 181MB handed over in 3s, proxy RSS +178MB.
  it('a client sending COPY data faster than the server takes it keeps the proxy RSS bounded', async () => {
    const s0 = await superClient(info, 'pg0', info.database);
    await s0.query(`DROP TABLE IF EXISTS bp_copy; CREATE TABLE bp_copy (t text); GRANT ALL ON bp_copy TO ${app.user};
      CREATE OR REPLACE FUNCTION bp_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$;
      CREATE TRIGGER bp_slow BEFORE INSERT ON bp_copy FOR EACH ROW EXECUTE FUNCTION bp_slow()`);
    await s0.end();
    const c = await connect(proxy.port);
    const baseline = rssOf(proxy.pid);
    const stream = (c.client as unknown as { connection: { stream: net.Socket } }).connection.stream;
    stream.removeAllListeners('data');
    let gotCopyIn = false;
    stream.on('data', (d: Buffer) => {
      if (d.includes(0x47)) gotCopyIn = true;
    });
    stream.write(msg.query('COPY bp_copy FROM STDIN'));
    expect(await until(() => gotCopyIn, 10_000)).toBe(true);
    // 1MB rows; the server takes ~20 a second (a 50ms trigger each). The client sends as fast as
    // its socket accepts, for 4s or 300MB: an unbounded proxy would take in all of it.
    const row = Buffer.alloc(1 << 20, 0x78);
    row[row.length - 1] = 0x0a;
    const frame = Buffer.concat([Buffer.from([0x64]), Buffer.alloc(4), row]);
    frame.writeInt32BE(4 + row.length, 1);
    let sent = 0;
    let peak = baseline;
    const stopAt = Date.now() + 4000;
    while (Date.now() < stopAt && sent < 300 * 1048576) {
      sent += frame.length;
      if (!stream.write(frame)) await Promise.race([new Promise((r) => stream.once('drain', r)), sleep(20)]);
      peak = Math.max(peak, rssOf(proxy.pid));
    }
    for (let i = 0; i < 4; i++) {
      await sleep(100);
      peak = Math.max(peak, rssOf(proxy.pid));
    }
    const mb = (b: number) => Math.round(b / 1048576);
    console.log(`COPY in to a slow server: client handed ${mb(sent)}MB to its socket in 4s; proxy RSS baseline ${mb(baseline)}MB, peak ${mb(peak)}MB (growth ${mb(peak - baseline)}MB)`);
    stream.destroy();
    // Only meaningful if the client did push far more than the bound.
    expect(sent).toBeGreaterThan(128 * 1048576);
    expect(peak - baseline).toBeLessThan(64 * 1048576);
  });
});
