import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { connectMysql } from '../../../src/backend/mysql/connect.js';
import { Cap } from '../../../src/protocol/mysql/index.js';
import { FakeMysql8 } from '../../support/fake-mysql8.js';
import { makeTestCa, type TestCa } from '../../support/tls.js';

/*
 * caching_sha2_password towards backends, against a STAND-IN MySQL 8 login
 * (test/support/fake-mysql8.ts): no MySQL 8 server can be installed here.
 * The stand-in decrypts and checks the password itself, so a wrong encoding
 * (padding, nonce XOR, missing NUL) fails these tests.
 */
const USER = 'app8';
const PASSWORD = 'sha2 pässword';
let ca: TestCa;
const servers: FakeMysql8[] = [];

async function server(o: { auth: 'fast' | 'full'; tls?: boolean; host?: string }): Promise<FakeMysql8> {
  const s = await FakeMysql8.start({ auth: o.auth, user: USER, password: PASSWORD, host: o.host, tls: o.tls ? { cert: ca.serverCert, key: ca.serverKey } : undefined });
  servers.push(s);
  return s;
}

const login = (port: number, extra: Partial<Parameters<typeof connectMysql>[0]> = {}) =>
  connectMysql({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: null, timeoutMs: 5000, node: 'm8', ...extra });

beforeAll(() => {
  ca = makeTestCa();
});

afterAll(async () => {
  for (const s of servers) await s.close();
  if (ca) rmSync(ca.dir, { recursive: true, force: true });
});

describe('caching_sha2_password full authentication (stand-in MySQL 8 server)', () => {
  it('fast path: 0x01 0x03 then OK', async () => {
    const s = await server({ auth: 'fast' });
    const c = await login(s.port);
    c.socket.destroy();
    expect(s.logins.at(-1)).toMatchObject({ ok: true, fullAuth: null, tls: false });
    expect(c.tls).toBe(false);
  });

  it('plain connection: asks for the RSA public key (0x02) and sends the password RSA-OAEP encrypted', async () => {
    const s = await server({ auth: 'full' });
    const c = await login(s.port);
    c.socket.destroy();
    expect(s.logins.at(-1)).toMatchObject({ ok: true, fullAuth: 'rsa', askedKey: true, tls: false });
  });

  it('TLS connection (backend_tls require): SSLRequest at seq 1, response at seq 2, the password in clear over TLS, no key request', async () => {
    const s = await server({ auth: 'full', tls: true });
    const c = await login(s.port, { tls: { mode: 'require' } });
    expect(c.tls).toBe(true);
    expect(c.capabilities & Cap.SSL).toBe(Cap.SSL);
    c.socket.destroy();
    expect(s.logins.at(-1)).toMatchObject({ ok: true, fullAuth: 'cleartext', askedKey: false, tls: true, seqs: [1, 2] });
  });

  it('verify-full with the CA that signed the certificate logs in; with another CA it fails with a TLS error', async () => {
    const s = await server({ auth: 'full', tls: true });
    const c = await login(s.port, { tls: { mode: 'verify-full', ca: ca.caCert } });
    expect(c.tls).toBe(true);
    c.socket.destroy();
    const other = makeTestCa();
    try {
      const err = await login(s.port, { tls: { mode: 'verify-full', ca: other.caCert } }).catch((e: Error & { code?: string }) => e);
      expect(err).toMatchObject({ code: 'SWITCHYARD_BACKEND_CONNECT_FAILED' });
      expect((err as Error).message).toMatch(/^node m8 \(127\.0\.0\.1:\d+\): TLS: .*(certificate|self.signed)/i);
    } finally {
      rmSync(other.dir, { recursive: true, force: true });
    }
  });

  it('verify-full checks the address against the certificate (127.0.0.2 is not in it); require does not', async () => {
    const s = await server({ auth: 'full', tls: true, host: '127.0.0.2' });
    const err = await login(s.port, { host: '127.0.0.2', tls: { mode: 'verify-full', ca: ca.caCert } }).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'SWITCHYARD_BACKEND_CONNECT_FAILED' });
    expect((err as Error).message).toMatch(/TLS: .*127\.0\.0\.2/);
    const c = await login(s.port, { host: '127.0.0.2', tls: { mode: 'require', ca: ca.caCert } });
    expect(c.tls).toBe(true);
    c.socket.destroy();
  });

  it('the stand-in itself agrees with an independent client: mysql2 logs in to it over RSA and over TLS', async () => {
    for (const tls of [false, true]) {
      const s = await server({ auth: 'full', tls });
      const c = await mysql.createConnection({ host: '127.0.0.1', port: s.port, user: USER, password: PASSWORD, ...(tls ? { ssl: { rejectUnauthorized: false } } : {}) });
      c.on('error', () => undefined);
      c.destroy();
      expect(s.logins.at(-1)).toMatchObject({ ok: true, fullAuth: tls ? 'cleartext' : 'rsa', tls });
    }
  });

  it('a wrong password: the server\'s ERR 1045 comes back as BACKEND_AUTH_FAILED, on both paths', async () => {
    for (const tls of [false, true]) {
      const s = await server({ auth: 'full', tls });
      const err = await login(s.port, { password: 'wrong', tls: { mode: tls ? 'require' : 'disable' } }).catch((e: Error & { code?: string }) => e);
      expect(err).toMatchObject({ code: 'SWITCHYARD_BACKEND_AUTH_FAILED' });
      expect((err as Error).message).toMatch(/1045 Access denied/);
      expect(s.logins.at(-1)).toMatchObject({ ok: false, fullAuth: tls ? 'cleartext' : 'rsa' });
    }
  });

  it('prefer against a server without TLS: plain login (RSA path); require: a clear error, nothing sent', async () => {
    const s = await server({ auth: 'full' });
    const c = await login(s.port, { tls: { mode: 'prefer' } });
    expect(c.tls).toBe(false);
    c.socket.destroy();
    const err = await login(s.port, { tls: { mode: 'require' } }).catch((e: Error & { code?: string }) => e);
    expect(err).toMatchObject({ code: 'SWITCHYARD_BACKEND_CONNECT_FAILED' });
    expect((err as Error).message).toMatch(/does not offer TLS .* backend_tls\.mode is require/);
    // The refused login never sent a HandshakeResponse.
    expect(s.logins.at(-1)!.seqs).toEqual([]);
  });
});
