import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { rmSync } from 'node:fs';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { makeTestCa, type TestCa } from '../support/tls.js';

/** Client-facing TLS: sslmode=require and verify-full (psql, libpq) with a test CA. */
const run = promisify(execFile);
const info = inject('pgCluster');
const app = info.users.app;
const PSQL = '/usr/lib/postgresql/15/bin/psql';
let ca: TestCa;
let proxy: RunningProxy;
let requireProxy: RunningProxy;

beforeAll(async () => {
  ca = makeTestCa();
  const tls = (mode: string) => `    tls:\n      cert: ${ca.serverCert}\n      key: ${ca.serverKey}\n      mode: ${mode}\n`;
  proxy = await startProxy({ nodes: info.nodes, user: app, clusterYaml: tls('prefer') });
  requireProxy = await startProxy({ nodes: info.nodes, user: app, clusterYaml: tls('require') });
});

afterAll(async () => {
  await proxy?.stop();
  await requireProxy?.stop();
  if (ca) rmSync(ca.dir, { recursive: true, force: true });
});

function psql(port: number, sslmode: string, extra: Record<string, string> = {}) {
  const env = { ...process.env, PGPASSWORD: app.password, ...extra };
  const conninfo = `host=localhost port=${port} user=${app.user} dbname=${info.database} sslmode=${sslmode}`;
  return run(PSQL, ['-X', '-At', conninfo, '-c', 'SELECT 7'], { env, timeout: 30_000 });
}

describe('TLS to clients', () => {
  it('sslmode=require connects over TLS', async () => {
    const r = await psql(proxy.port, 'require');
    expect(r.stdout.trim()).toBe('7');
  });

  it('sslmode=verify-full verifies the certificate against the test CA', async () => {
    const r = await psql(proxy.port, 'verify-full', { PGSSLROOTCERT: ca.caCert });
    expect(r.stdout.trim()).toBe('7');
  });

  it('verify-full fails against a CA that did not sign the certificate', async () => {
    const other = makeTestCa();
    try {
      await expect(psql(proxy.port, 'verify-full', { PGSSLROOTCERT: other.caCert })).rejects.toMatchObject({ stderr: expect.stringMatching(/certificate verify failed/) });
    } finally {
      rmSync(other.dir, { recursive: true, force: true });
    }
  });

  it('sslmode=disable still works with tls.mode prefer', async () => {
    const r = await psql(proxy.port, 'disable');
    expect(r.stdout.trim()).toBe('7');
  });

  it('tls.mode require refuses a plain client with a clear error, and accepts TLS', async () => {
    await expect(psql(requireProxy.port, 'disable')).rejects.toMatchObject({ stderr: expect.stringMatching(/requires SSL/) });
    const r = await psql(requireProxy.port, 'require');
    expect(r.stdout.trim()).toBe('7');
  });
});
