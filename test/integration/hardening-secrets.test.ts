import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { pino } from 'pino';
import { App } from '../../src/app.js';
import { freePort } from '../../src/devcluster/proc.js';
import { REDACTED_PATHS } from '../../src/observability/logger.js';

/**
 * Passwords and the admin token never appear in switchyard's log (at debug level), in /status, in /metrics or in an error a client sees, through
 * logins right and wrong, queries, a reload and a backend login failure.
 */
const info = inject('pgCluster');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-secrets-'));
const TOKEN = 'tok-7f3a9c1e-secret';
const WRONG = 'wrong-pw-5b8d2e';
// md5user/md5pw and plainuser/plainpw exist on the test cluster (docs/testing.md); trustuser logs in
// to the proxy with "nodepw-4c1d" and to the node (trust) with no password.
const SECRETS = ['md5pw', 'plainpw', TOKEN, WRONG, 'nodepw-4c1d'];
let logText = '';
let app: App;
let port = 0;
let adminPort = 0;

beforeAll(async () => {
  port = await freePort();
  adminPort = await freePort();
  const nodes = info.nodes.map((n) => `      - { name: ${n.name}, host: ${n.host}, port: ${n.port} }`).join('\n');
  const yaml = `admin:\n  listen: 127.0.0.1:${adminPort}\n  token: ${TOKEN}\nclusters:\n  - name: main\n    protocol: postgres\n    listen: 127.0.0.1:${port}\n    nodes:\n${nodes}\n    users:\n      - { name: md5user, password: "md5pw" }\n      - { name: plainuser, password: "plainpw" }\n      - { name: trustuser, password: "nodepw-4c1d" }\n    health:\n      interval: 100ms\n`;
  writeFileSync(join(dir, 'switchyard.yaml'), yaml);
  const sink = new Writable({
    write(chunk, _e, cb) {
      logText += String(chunk);
      cb();
    },
  });
  app = new App({ configPath: join(dir, 'switchyard.yaml'), env: {}, logger: pino({ level: 'debug', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, sink) });
  await app.start();
  for (let i = 0; i < 100 && !app.status().clusters[0]!.primary; i++) await new Promise((r) => setTimeout(r, 50));
});

afterAll(async () => {
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const client = (user: string, password: string) => new pg.Client({ host: '127.0.0.1', port, user, password, database: info.database });

describe('secrets', () => {
  it('never appear in the log, /status, /metrics or client errors', async () => {
    const errors: string[] = [];
    // 1. Right logins and queries (debug logs queries), wrong passwords, an unknown user.
    for (const [u, p] of [['md5user', 'md5pw'], ['plainuser', 'plainpw']] as const) {
      const c = client(u, p);
      await c.connect();
      await c.query('SELECT 1');
      await c.query("SELECT 'a literal' AS x");
      await c.end();
    }
    for (const [u, p] of [['md5user', WRONG], ['nobody', WRONG], ['plainuser', 'md5pw']] as const) {
      const c = client(u, p);
      c.on('error', () => undefined);
      const e = await c.connect().then(() => null, (err: Error) => err);
      expect(e).not.toBeNull();
      errors.push(e!.message);
    }
    // 2. trustuser: the proxy checks the client's password; the node (trust) asks for none.
    const t = client('trustuser', 'nodepw-4c1d');
    await t.connect();
    await t.query('SELECT 1');
    await t.end();
    // 3. A reload, with and without the token.
    const ok = await fetch(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    const bad = await fetch(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST', headers: { authorization: `Bearer ${WRONG}` } });
    expect(bad.status).toBe(401);
    errors.push(await bad.text());
    const status = await (await fetch(`http://127.0.0.1:${adminPort}/status`)).text();
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(logText.length).toBeGreaterThan(0);
    expect(logText).toMatch(/client login failed/); // the failed logins were logged (at debug), with what they carried
    for (const secret of SECRETS) {
      expect(logText, `log contains ${secret}`).not.toContain(secret);
      expect(status, `/status contains ${secret}`).not.toContain(secret);
      expect(metrics, `/metrics contains ${secret}`).not.toContain(secret);
      for (const e of errors) expect(e, `error contains ${secret}`).not.toContain(secret);
    }
  });
});
