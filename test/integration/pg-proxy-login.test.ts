import net from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../support/proxy.js';

/**
 * What a client sees at login: GSSENCRequest and SSLRequest answered 'N' (no TLS
 * configured) with the startup going on over the same socket, the ParameterStatus set of a
 * real backend, and a BackendKeyData of the proxy's own making.
 */
const info = inject('pgCluster');
const app = info.users.app;
const primary = info.nodes.find((n) => n.role === 'primary')!;
let proxy: RunningProxy;

beforeAll(async () => {
  proxy = await startProxy({ nodes: info.nodes, user: app });
});
afterAll(async () => {
  await proxy?.stop();
});

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

describe('login', () => {
  it("GSSENCRequest then SSLRequest both get 'N', and the startup then proceeds on the same socket", async () => {
    const s = net.connect(proxy.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    await new Promise((r) => s.once('connect', r));
    const read = async (n: number) => {
      for (let i = 0; i < 100 && Buffer.concat(chunks).length < n; i++) await new Promise((r) => setTimeout(r, 20));
      return Buffer.concat(chunks);
    };
    s.write(Buffer.concat([int32(8), int32(80877104)]));
    expect((await read(1)).toString()).toBe('N');
    s.write(Buffer.concat([int32(8), int32(80877103)]));
    expect((await read(2)).toString()).toBe('NN');
    const body = Buffer.from(`user\0${app.user}\0database\0${info.database}\0\0`);
    s.write(Buffer.concat([int32(8 + body.length), int32(196608), body]));
    const got = await read(3);
    // AuthenticationSASL (R, code 10) for the SCRAM user.
    expect(String.fromCharCode(got[2]!)).toBe('R');
    expect(got.readInt32BE(2 + 5)).toBe(10);
    s.destroy();
  });

  it('the ParameterStatus set is the one the primary itself sends; BackendKeyData is the proxy\'s own', async () => {
    const collect = async (cfg: pg.ClientConfig) => {
      const c = new pg.Client(cfg);
      const params = new Map<string, string>();
      let key: { processID: number; secretKey: number } | null = null;
      const conn = (c as unknown as { connection: { on(e: string, f: (m: Record<string, unknown>) => void): void } }).connection;
      conn.on('parameterStatus', (m) => params.set(String(m.parameterName), String(m.parameterValue)));
      conn.on('backendKeyData', (m) => (key = { processID: Number(m.processID), secretKey: Number(m.secretKey) }));
      await c.connect();
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await c.end();
      return { params, key: key!, pid };
    };
    const direct = await collect({ host: primary.host, port: primary.port, user: app.user, password: app.password, database: info.database });
    const viaProxy = await collect({ host: '127.0.0.1', port: proxy.port, user: app.user, password: app.password, database: info.database });
    for (const name of ['server_version', 'server_encoding', 'client_encoding', 'DateStyle', 'TimeZone', 'integer_datetimes', 'standard_conforming_strings', 'IntervalStyle', 'application_name', 'is_superuser', 'session_authorization']) {
      expect(viaProxy.params.get(name), name).toBe(direct.params.get(name));
    }
    expect([...viaProxy.params.keys()].sort()).toEqual([...direct.params.keys()].sort());
    // The key the client holds is not a backend's (its pid is not the backend's pid).
    expect(viaProxy.key.processID).not.toBe(viaProxy.pid);
    expect(viaProxy.key.processID).toBeGreaterThan(0);
  });
});
