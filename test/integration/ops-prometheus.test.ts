import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import pg from 'pg';
import { freeTcpPort } from '../support/proxy.js';
import { startOpsProxy, waitFor, type OpsProxy } from './ops-support.js';

/**
 * A real Prometheus (Debian's package) scrapes a running switchyard every
 * second, with the shipped alert rules loaded; its HTTP API must then return
 * the query series for the routes the test used.
 */
const info = inject('pgCluster');
const user = info.users.app;
let p: OpsProxy;
let prom: ChildProcess | null = null;
let promPort = 0;
let promLog = '';

beforeAll(async () => {
  p = await startOpsProxy(info.nodes, user, {}, { watch: false });
  promPort = await freeTcpPort();
  const dir = join(p.dir, 'prometheus');
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [ "${resolve('config/prometheus/alerts.yml')}" ]
scrape_configs:
  - job_name: switchyard
    static_configs: [ { targets: [ "127.0.0.1:${p.adminPort}" ] } ]
`,
  );
  prom = spawn('/usr/bin/prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  prom.stdout!.on('data', (d: Buffer) => (promLog += d.toString()));
  prom.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
});

afterAll(async () => {
  if (prom && prom.exitCode === null) {
    const gone = new Promise((r) => prom!.once('exit', r));
    prom.kill('SIGTERM');
    await gone;
  }
  await p?.stop();
});

async function query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  expect(body.status).toBe('success');
  return body.data.result;
}

async function firing(): Promise<string[]> {
  const res = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/alerts`)).json()) as { data: { alerts: { labels: { alertname: string }; state: string }[] } };
  return res.data.alerts.filter((a) => a.state === 'firing').map((a) => a.labels.alertname);
}

describe('Prometheus scrapes switchyard', () => {
  it('returns switchyard_queries_total series for the primary and replica routes the test used', async () => {
    const c2 = new pg.Client({ host: '127.0.0.1', port: p.port, user: user.user, password: user.password, database: info.database });
    await c2.connect();
    for (let i = 0; i < 20; i++) await c2.query('SELECT 1');
    // A transaction runs on the primary.
    await c2.query('BEGIN');
    await c2.query('SELECT 2');
    await c2.query('COMMIT');
    await c2.end();

    const series = await waitFor(
      'Prometheus to scrape both routes',
      async () => {
        if (prom?.exitCode !== null) throw new Error(`prometheus exited: ${promLog.slice(-2000)}`);
        const r = await query('switchyard_queries_total').catch(() => []);
        const routes = new Set(r.map((s) => s.metric.route));
        return routes.has('primary') && routes.has('replica') ? r : undefined;
      },
      30_000,
    );
    for (const s of series) {
      expect(s.metric.job).toBe('switchyard');
      expect(s.metric.cluster).toBe('main');
      expect(['pg0', 'pg1', 'pg2']).toContain(s.metric.node);
    }
    const replicaReads = series.filter((s) => s.metric.route === 'replica').reduce((n, s) => n + Number(s.value[1]), 0);
    expect(replicaReads).toBeGreaterThanOrEqual(20);
    expect(series.filter((s) => s.metric.route === 'primary').every((s) => s.metric.node === 'pg0')).toBe(true);
    // The gauges computed at scrape time arrive too, and the shipped rules load and evaluate.
    expect((await query('switchyard_backend_up')).length).toBe(3);
    expect((await query('switchyard_primary_count'))[0]!.value[1]).toBe('1');
    expect((await query('process_resident_memory_bytes')).length).toBe(1);
    const rules = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string }[] }[] } };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    expect(loaded).toHaveLength(7);
    // Nothing fires on a healthy cluster.
    expect(await firing()).toEqual([]);
  });

  it('a failed reload fires SwitchyardConfigReloadFailed', async () => {
    writeFileSync(p.configPath, 'clusters: [');
    expect((await p.admin('/reload', { method: 'POST' })).status).toBe(422);
    await waitFor('the alert to fire', async () => (await firing()).includes('SwitchyardConfigReloadFailed'), 20_000).catch(async (e) => {
      const series = await query('switchyard_config_reloads_total');
      const inc = await query('increase(switchyard_config_reloads_total{result="failure"}[10m])');
      const alerts = await (await fetch(`http://127.0.0.1:${promPort}/api/v1/alerts`)).text();
      throw new Error(`${(e as Error).message}: series ${JSON.stringify(series)} increase ${JSON.stringify(inc)} alerts ${alerts}`);
    });
  });
});
