import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../support/proxy.js';

/**
 * Bad input: each hostile connection gets a FATAL 08P01 where the protocol
 * allows one and is closed, while 20 well-behaved sessions keep running
 * queries and all complete.
 */
const info = inject('pgCluster');
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startProxy({
    nodes: info.nodes,
    user: info.users.app,
    topYaml: 'limits:\n  max_message_size: 1MB\n  auth_timeout: 2s\n',
  });
});

afterAll(async () => {
  await proxy?.stop();
});

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function startup(user: string, database: string): Buffer {
  const body = Buffer.concat([int32(196608), Buffer.from(`user\0${user}\0database\0${database}\0\0`)]);
  return Buffer.concat([int32(body.length + 4), body]);
}

/** Sends bytes, collects everything until the proxy closes the connection. */
function exchange(chunks: Buffer[], opts: { endAfter?: boolean; waitMs?: number } = {}): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: proxy.port });
    const got: Buffer[] = [];
    let closed = false;
    const finish = () => resolve({ data: Buffer.concat(got), closed });
    const timer = setTimeout(() => {
      s.destroy();
      finish();
    }, opts.waitMs ?? 5000);
    s.on('data', (d) => got.push(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      closed = true;
      clearTimeout(timer);
      finish();
    });
    s.on('connect', async () => {
      for (const c of chunks) {
        s.write(c);
        await new Promise((r) => setTimeout(r, 5));
      }
      if (opts.endAfter) s.end();
    });
  });
}

/** The SQLSTATE of the first ErrorResponse in a server byte stream, if any. */
function firstErrorCode(data: Buffer): { severity: string; code: string } | null {
  let pos = 0;
  while (pos + 5 <= data.length) {
    const type = String.fromCharCode(data[pos]!);
    const len = data.readInt32BE(pos + 1);
    if (type === 'E') {
      const fields = data.subarray(pos + 5, pos + 1 + len).toString('utf8').split('\0');
      const get = (k: string) => fields.find((f) => f.startsWith(k))?.slice(1) ?? '';
      return { severity: get('S'), code: get('C') };
    }
    pos += 1 + len;
  }
  return null;
}

// The SQLSTATE of the FATAL each gets: 08P01 protocol violation, 0A000 unsupported version,
// 08006 the auth_timeout of a client that stops mid-startup.
const hostile: [string, Buffer[], string][] = [
  ['random bytes', [randomBytes(64)], '08P01'],
  ['a startup length below 8', [int32(3)], '08P01'],
  ['a startup length above max_message_size', [int32(50 * 1024 * 1024), randomBytes(100)], '08P01'],
  ['a negative startup length', [int32(-5)], '08P01'],
  ['an unknown protocol version', [Buffer.concat([int32(8), int32(0x00020000)])], '0A000'],
  ['a query before authentication', [Buffer.concat([Buffer.from('Q'), int32(13), Buffer.from('SELECT 1\0')])], '08P01'],
  ['a startup packet without user', [Buffer.concat([int32(13), int32(196608), Buffer.from('x\0y\0\0')])], '08P01'],
  ['a startup packet with an unterminated parameter', [Buffer.concat([int32(14), int32(196608), Buffer.from('user\0a\0')]).subarray(0, 14)], '08P01'],
  ['a truncated startup packet, then silence', [startup('app', 'app').subarray(0, 10)], '08006'],
  ['a startup then an unknown message type', [startup('app', 'app'), Buffer.concat([Buffer.from('~'), int32(4)])], '08P01'],
  ['a startup then a password message with a length below 4', [startup('app', 'app'), Buffer.concat([Buffer.from('p'), int32(2)])], '08P01'],
  ['a startup then a wrong SASL mechanism', [startup('app', 'app'), Buffer.concat([Buffer.from('p'), int32(4 + 5 + 4 + 1), Buffer.from('MD99\0'), int32(1), Buffer.from('x')])], '08P01'],
];

describe('hostile input during startup and authentication', () => {
  it.each(hostile)('%s: a FATAL with its SQLSTATE, then the connection closes', async (_name, chunks, code) => {
    const r = await exchange(chunks, { waitMs: 4000 });
    expect(firstErrorCode(r.data)).toEqual({ severity: 'FATAL', code });
    expect(r.closed).toBe(true);
  });

  it('a client vanishing mid-message costs nothing', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await exchange([startup('app', 'app').subarray(0, 5 + (i % 15))], { endAfter: true, waitMs: 1000 });
      expect(r.closed).toBe(true);
    }
  });
});

describe('protocol negotiation', () => {
  it('a 3.1 startup with an unknown _pq_ option gets NegotiateProtocolVersion (3.0, the option listed), then authentication', async () => {
    const body = Buffer.concat([int32(0x00030001), Buffer.from('user\0app\0database\0app\0_pq_.fancy\0on\0\0')]);
    const r = await exchange([Buffer.concat([int32(body.length + 4), body])], { waitMs: 500 });
    expect(String.fromCharCode(r.data[0]!)).toBe('v');
    const len = r.data.readInt32BE(1);
    expect(r.data.readInt32BE(5)).toBe(0x00030000);
    expect(r.data.readInt32BE(9)).toBe(1);
    expect(r.data.subarray(13, 1 + len).toString()).toBe('_pq_.fancy\0');
    expect(String.fromCharCode(r.data[1 + len]!)).toBe('R');
  });
});

describe('hostile input after login', () => {
  async function loggedInSocket(): Promise<{ sock: net.Socket; received: Buffer[] }> {
    // Log in with node-postgres, then take over its socket to send raw bytes.
    const client = new pg.Client({ connectionString: proxy.url() });
    client.on('error', () => undefined);
    await client.connect();
    const sock = (client as unknown as { connection: { stream: net.Socket } }).connection.stream;
    sock.removeAllListeners('data');
    sock.removeAllListeners('end');
    const received: Buffer[] = [];
    sock.on('data', (d: Buffer) => received.push(d));
    sock.on('error', () => undefined);
    return { sock, received };
  }

  const afterLogin: [string, Buffer][] = [
    ['a length below 4', Buffer.concat([Buffer.from('Q'), int32(1)])],
    ['a length above max_message_size', Buffer.concat([Buffer.from('Q'), int32(8 * 1024 * 1024), Buffer.alloc(16)])],
    ['a negative length', Buffer.concat([Buffer.from('P'), int32(-100)])],
  ];

  it.each(afterLogin)('%s: FATAL 08P01 and the connection closes', async (_name, bytes) => {
    const { sock, received } = await loggedInSocket();
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.write(bytes);
    await closed;
    const err = firstErrorCode(Buffer.concat(received));
    expect(err).toEqual({ severity: 'FATAL', code: '08P01' });
  });

  it('an unknown message type is refused by the server with an error, and the session recovers or closes cleanly', async () => {
    const { sock, received } = await loggedInSocket();
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.write(Buffer.concat([Buffer.from('~'), int32(4)]));
    await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
    const err = firstErrorCode(Buffer.concat(received));
    expect(err?.code).toBe('08P01');
    sock.destroy();
  });
});

describe('good sessions are unharmed by bad ones', () => {
  it('20 sessions running queries in parallel all complete while hostile clients come and go', async () => {
    let stopHostile = false;
    const hostileLoop = (async () => {
      let n = 0;
      while (!stopHostile && n < 200) {
        const [, chunks] = hostile[n % hostile.length]!;
        await exchange(chunks, { waitMs: 300, endAfter: n % 2 === 0 });
        n++;
      }
      return n;
    })();
    const good = Array.from({ length: 20 }, async (_, i) => {
      const client = new pg.Client({ connectionString: proxy.url() });
      await client.connect();
      let sum = 0;
      for (let k = 0; k < 50; k++) {
        const r = await client.query<{ n: number }>('SELECT $1::int AS n', [i * 1000 + k]);
        sum += r.rows[0]!.n;
      }
      await client.end();
      return sum;
    });
    const sums = await Promise.all(good);
    stopHostile = true;
    const hostileCount = await hostileLoop;
    expect(hostileCount).toBeGreaterThan(0);
    sums.forEach((s, i) => expect(s).toBe(i * 1000 * 50 + (49 * 50) / 2));
    // The process still serves new clients.
    const c = new pg.Client({ connectionString: proxy.url() });
    await c.connect();
    expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
    await c.end();
  });
});
