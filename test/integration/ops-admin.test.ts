import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/devcluster/proc.js';
import { startProxy } from '../support/proxy.js';

/**
 * Admin HTTP beyond the reload tests: /readyz both ways, the /status JSON over HTTP as
 * documented, and SIGHUP reloading a single-process `switchyard start` (dist/cli.js).
 */
const info = inject('pgCluster');
const app = info.users.app;
const dir = mkdtempSync(join(tmpdir(), 'switchyard-admin-'));
let proc: ChildProcess | null = null;

afterAll(async () => {
  if (proc && proc.exitCode === null) {
    proc.kill('SIGTERM');
    await new Promise((r) => proc!.once('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
});

const get = async (port: number, path: string) => {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, text: await r.text() };
};

describe('/readyz and /status', () => {
  it('/readyz is 503 while no node of a cluster is reachable, 200 once one is', async () => {
    const dead = await freePort(); // nothing listens there
    const p = await startProxy({ nodes: [{ name: 'gone', host: '127.0.0.1', port: dead }], user: app, clusterYaml: '    roles: { primary: gone }\n', waitForTopology: false });
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect((await get(p.adminPort, '/readyz')).status).toBe(503);
      expect((await get(p.adminPort, '/healthz')).status).toBe(200);
    } finally {
      await p.stop();
    }
    const live = await startProxy({ nodes: info.nodes, user: app });
    try {
      expect(await get(live.adminPort, '/readyz')).toEqual({ status: 200, text: 'ready\n' });
    } finally {
      await live.stop();
    }
  });

  it('/status over HTTP has every documented field', async () => {
    const p = await startProxy({ nodes: info.nodes, user: app });
    try {
      const r = await get(p.adminPort, '/status');
      expect(r.status).toBe(200);
      const s = JSON.parse(r.text) as { clusters: Record<string, unknown>[]; config: Record<string, unknown> };
      expect(s.config).toMatchObject({ loaded_at: expect.any(String), sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
      const c = s.clusters[0]!;
      expect(c).toMatchObject({ name: 'main', protocol: 'postgres' });
      const nodes = c.nodes as Record<string, unknown>[];
      expect(nodes.map((n) => n.name)).toEqual(info.nodes.map((n) => n.name));
      for (const n of nodes) {
        for (const key of ['name', 'host', 'port', 'role', 'up', 'weight', 'lag_bytes', 'lag_seconds', 'eligible', 'pool']) expect(n, key).toHaveProperty(key);
        expect(n.pool).toMatchObject({ active: expect.any(Number), idle: expect.any(Number), waiting: expect.any(Number) });
      }
      expect(nodes.find((n) => n.name === 'pg0')).toMatchObject({ role: 'primary', up: true, eligible: false });
      expect(nodes.find((n) => n.name === 'pg1')).toMatchObject({ role: 'replica', up: true, eligible: true, lag_bytes: expect.any(Number), lag_seconds: expect.any(Number) });
      // No password anywhere in it.
      expect(r.text).not.toContain(`"${app.password}"`);
      expect(r.text).not.toMatch(/password/i);
    } finally {
      await p.stop();
    }
  });
});

describe('SIGHUP', () => {
  it('reloads a single-process switchyard start: the new weight shows, the failure counter stays 0', async () => {
    const port = await freePort();
    const admin = await freePort();
    const config = join(dir, 'switchyard.yaml');
    const yaml = (w: number) => `admin:\n  listen: 127.0.0.1:${admin}\n  token: t\nlog:\n  level: warn\nclusters:\n  - name: main\n    protocol: postgres\n    listen: 127.0.0.1:${port}\n    nodes:\n${info.nodes.map((n) => `      - { name: ${n.name}, host: ${n.host}, port: ${n.port}, weight: ${n.name === 'pg2' ? w : 1} }`).join('\n')}\n    users:\n      - { name: ${app.user}, password: "${app.password}" }\n`;
    writeFileSync(config, yaml(1));
    proc = spawn(process.execPath, ['dist/cli.js', 'start', '-c', config, '--no-watch'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += String(d)));
    const weightOf = async () => {
      const s = JSON.parse((await get(admin, '/status')).text) as { clusters: { nodes: { name: string; weight: number }[] }[] };
      return s.clusters[0]!.nodes.find((n) => n.name === 'pg2')!.weight;
    };
    const until = async (cond: () => Promise<boolean>, ms: number) => {
      const t0 = Date.now();
      for (;;) {
        try {
          if (await cond()) return Date.now() - t0;
        } catch {
          // not listening yet
        }
        if (Date.now() - t0 > ms) throw new Error(`timed out; stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await until(async () => (await get(admin, '/readyz')).status === 200, 20_000);
    expect(await weightOf()).toBe(1);
    writeFileSync(config, yaml(5));
    proc.kill('SIGHUP');
    const ms = await until(async () => (await weightOf()) === 5, 10_000);
    console.log(`SIGHUP: new weight in /status after ${ms}ms`);
    const metrics = (await get(admin, '/metrics')).text;
    expect(metrics).toMatch(/^switchyard_config_reloads_total\{result="success"\} 1$/m);
    expect(metrics).not.toMatch(/^switchyard_config_reloads_total\{result="failure"\} [1-9]/m);
    expect(proc.exitCode).toBeNull();
    expect(readFileSync(config, 'utf8')).toContain('weight: 5');
  }, 60_000);
});
