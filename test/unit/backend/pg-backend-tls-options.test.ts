import net from 'node:net';
import tls from 'node:tls';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPgBackend } from '../../../src/backend/pg/connect.js';
import { makeTestCa, type TestCa } from '../../support/tls.js';

/*
 * The PostgreSQL backend's TLS options come from src/backend/tls-options.ts (as the MySQL
 * backend's do). A stand-in server answers the SSLRequest with 'S', completes the TLS
 * handshake with the test CA's certificate (for localhost and 127.0.0.1) and then closes:
 * a login that gets past TLS fails with "closed the connection during login".
 */
let ca: TestCa;
const servers: net.Server[] = [];

async function tlsStandIn(host: string): Promise<number> {
  const server = net.createServer((sock) => {
    sock.once('data', () => {
      sock.write('S');
      const secure = new tls.TLSSocket(sock, { isServer: true, cert: readFileSync(ca.serverCert), key: readFileSync(ca.serverKey) });
      secure.once('secure', () => secure.end());
      secure.on('error', () => sock.destroy());
    });
    sock.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as net.AddressInfo).port;
}

const login = (host: string, port: number, ca: string) =>
  connectPgBackend({ node: 'pg9', host, port, user: 'app', password: 'app', database: 'app', tls: { mode: 'verify-full', ca }, connectTimeoutMs: 5000 }).then(
    () => null,
    (e: Error) => e.message,
  );

beforeAll(() => {
  ca = makeTestCa();
});

afterAll(() => {
  for (const s of servers) s.close();
  rmSync(ca.dir, { recursive: true, force: true });
});

describe('PostgreSQL backend_tls options', () => {
  it('verify-full checks an IP host against the certificate (127.0.0.2 is not in it; 127.0.0.1 is)', async () => {
    const bad = await login('127.0.0.2', await tlsStandIn('127.0.0.2'), ca.caCert);
    expect(bad).toMatch(/TLS: Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.2/);
    const good = await login('127.0.0.1', await tlsStandIn('127.0.0.1'), ca.caCert);
    expect(good).toMatch(/closed the connection during login/);
  });

  it('an unreadable CA file is a connect error naming it, not an exception in a socket handler', async () => {
    const missing = join(ca.dir, 'missing-ca.pem');
    const err = await login('127.0.0.1', await tlsStandIn('127.0.0.1'), missing);
    expect(err).toMatch(/cannot read backend_tls\.ca: ENOENT.*missing-ca\.pem/);
  });
});
