import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PgCluster } from '../support/pg-cluster.js';
import { freeTcpPort } from '../support/proxy.js';
import { nodeStatementCalls, resetStatementStats } from '../support/pg-stats.js';
import { configMapDir, renderConfig, sample, startOpsProxy, waitFor, type OpsConfig, type OpsProxy } from './ops-support.js';

/**
 * Hot reload against the real test cluster: POST /reload under pgbench load,
 * listen address change, node removal, the ConfigMap symlink swap, drain and
 * enable, and the admin token rules.
 */
const info = inject('pgCluster');
const user = info.users.app;
const PG_BIN = '/usr/lib/postgresql/15/bin';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pgbench(args: string[], port: number): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: user.user, PGPASSWORD: user.password, PGDATABASE: info.database, PGSSLMODE: 'disable' };
  return new Promise((resolve) => {
    execFile(`${PG_BIN}/pgbench`, args, { env, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function replicaSelects(): Promise<Record<string, number>> {
  return nodeStatementCalls(info, 'SELECT abalance FROM pgbench_accounts');
}

beforeAll(async () => {
  // Tables written straight to the primary: the proxy is not what is tested here.
  const r = await pgbench(['-i', '-s', '1', '-q'], info.nodes[0]!.port);
  expect(r.code, r.stderr).toBe(0);
  await PgCluster.attach(info).waitForReplication();
});

describe('POST /reload under load', () => {
  let p: OpsProxy;
  let base: OpsConfig;
  afterAll(async () => p?.stop());

  it('50 reloads (weights and lag budgets alternating, 5 invalid files) while pgbench runs 8 clients: no client error or disconnect', async () => {
    p = await startOpsProxy(info.nodes, user, {}, { watch: false });
    base = { adminPort: p.adminPort, port: p.port };
    const before = await (await p.admin('/metrics')).text();
    expect(sample(before, 'switchyard_config_reloads_total', { result: 'failure' }) ?? 0).toBe(0);

    // Long enough that a slow machine still does all 50 reloads inside the run.
    const bench = pgbench(['-n', '-c', '8', '-j', '2', '-T', '75', '-S'], p.port);
    let benchDone = false;
    void bench.then(() => (benchDone = true));
    await waitFor('8 clients through the proxy', () => p.app.status().clusters[0]!.client_connections === 8);

    const variants: Partial<OpsConfig>[] = [
      { weights: { pg1: 1, pg2: 0 }, lagBytes: '16MB', lagTime: '1s' },
      { weights: { pg1: 0, pg2: 1 }, lagBytes: '8MB', lagTime: '2s' },
    ];
    let valid = 0;
    let invalid = 0;
    const started = Date.now();
    for (let i = 0; i < 50; i++) {
      if (i % 10 === 9) {
        writeFileSync(p.configPath, renderConfig(info.nodes, user, { ...base, rawWeight: '-1' }));
        const res = await p.admin('/reload', { method: 'POST' });
        expect(res.status).toBe(422);
        const body = (await res.json()) as { problems: string[] };
        // `nodes:` is line 10 of the file; pg2 is its third entry, line 13.
        expect(body.problems.join('\n')).toMatch(/switchyard\.yaml:13: clusters\[0\]\.nodes\[2\]\.weight/);
        invalid++;
      } else {
        expect(p.app.status().clusters[0]!.client_connections, `before reload ${i}`).toBe(8);
        const v = variants[valid % 2]!;
        writeFileSync(p.configPath, renderConfig(info.nodes, user, { ...base, ...v }));
        const res = await p.admin('/reload', { method: 'POST' });
        expect(res.status, await res.clone().text()).toBe(200);
        valid++;
        const st = p.app.status().clusters[0]!;
        expect(st.max_replica_lag_bytes).toBe(v.lagBytes === '8MB' ? 8 * 1024 * 1024 : 16 * 1024 * 1024);
        expect(st.max_replica_lag_seconds).toBe(v.lagTime === '2s' ? 2 : 1);
        // Weights, seen where the reads really ran: after the swap, the weight-0 replica gets none.
        // Checked after every third valid reload (15 of 45): each check costs ~1 s, and with all
        // 45 the loop outlasted pgbench on a loaded 2-core machine; the others swap back to back.
        if (valid % 3 !== 0) continue;
        // The grace lets a read routed just before the swap finish first (this process runs the
        // proxy and the test on a busy 2-core machine: 100 ms was too short once in a few runs).
        await sleep(400);
        await resetStatementStats(info);
        await sleep(200);
        const calls = await replicaSelects();
        const [on, off] = v.weights!.pg1 === 0 ? ['pg2', 'pg1'] : ['pg1', 'pg2'];
        expect(calls[off], `reload ${i}: ${JSON.stringify(calls)}`).toBe(0);
        expect(calls[on], `reload ${i}: ${JSON.stringify(calls)}`).toBeGreaterThan(0);
      }
      expect(p.app.status().clusters[0]!.client_connections, `after reload ${i}`).toBe(8);
    }
    const loopMs = Date.now() - started;
    console.log(`[ops-reload] 50 reloads in ${loopMs}ms under pgbench`);
    // The reloads all happened while pgbench was running.
    expect(benchDone, `loop took ${loopMs}ms`).toBe(false);
    const r = await bench;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/abort|error|closed/i);
    expect(r.stdout).toMatch(/number of failed transactions: 0/);
    console.log(`[ops-reload] pgbench: ${/number of transactions actually processed: \d+/.exec(r.stdout)?.[0]}`);
    expect(valid).toBe(45);
    expect(invalid).toBe(5);
    const after = await (await p.admin('/metrics')).text();
    expect(sample(after, 'switchyard_config_reloads_total', { result: 'failure' })).toBe(5);
    expect(sample(after, 'switchyard_config_reloads_total', { result: 'success' })).toBe(45);
    // Each problem was logged with the file, line and key path.
    const logged = p.logs.filter((l) => l.msg === 'config reload rejected; the running config stays').map((l) => String(l.problem));
    expect(logged).toHaveLength(5);
    for (const line of logged) expect(line).toMatch(/switchyard\.yaml:13: clusters\[0\]\.nodes\[2\]\.weight/);
  });

  it('a changed listen address opens the new one and stops accepting on the old; clients on the old stay', async () => {
    const oldPort = p.port;
    const c = new pg.Client({ host: '127.0.0.1', port: oldPort, user: user.user, password: user.password, database: info.database });
    await c.connect();
    const newPort = await freeTcpPort();
    writeFileSync(p.configPath, renderConfig(info.nodes, user, { ...base, port: newPort }));
    expect((await p.admin('/reload', { method: 'POST' })).status).toBe(200);
    const n = new pg.Client({ host: '127.0.0.1', port: newPort, user: user.user, password: user.password, database: info.database });
    await n.connect();
    expect((await n.query('SELECT 1 AS x')).rows[0].x).toBe(1);
    await n.end();
    const refused = new pg.Client({ host: '127.0.0.1', port: oldPort, user: user.user, password: user.password, database: info.database, connectionTimeoutMillis: 2000 });
    await expect(refused.connect()).rejects.toThrow(/ECONNREFUSED/);
    expect((await c.query('SELECT 2 AS x')).rows[0].x).toBe(2);
    await c.end();
    base.port = newPort;
  });

  it('removing a node drains it (no new reads, open clients stay); adding it back and changing pool size and health applies', async () => {
    const c = new pg.Client({ host: '127.0.0.1', port: base.port, user: user.user, password: user.password, database: info.database });
    await c.connect();
    writeFileSync(p.configPath, renderConfig(info.nodes, user, { ...base, only: ['pg0', 'pg1'], poolSize: 5, healthInterval: '200ms' }));
    expect((await p.admin('/reload', { method: 'POST' })).status).toBe(200);
    expect(p.app.status().clusters[0]!.nodes.map((n) => n.name)).not.toContain('pg2');
    await resetStatementStats(info);
    for (let i = 0; i < 200; i++) await c.query('SELECT abalance FROM pgbench_accounts WHERE aid = $1', [i + 1]);
    expect(await replicaSelects()).toEqual({ pg0: 0, pg1: 200, pg2: 0 });
    writeFileSync(p.configPath, renderConfig(info.nodes, user, { ...base }));
    expect((await p.admin('/reload', { method: 'POST' })).status).toBe(200);
    await waitFor('pg2 back up', () => p.app.status().clusters[0]!.nodes.find((n) => n.name === 'pg2')?.up);
    await resetStatementStats(info);
    for (let i = 0; i < 200; i++) await c.query('SELECT abalance FROM pgbench_accounts WHERE aid = $1', [i + 1]);
    const calls = await replicaSelects();
    expect(calls.pg1! + calls.pg2!).toBe(200);
    expect(calls.pg2).toBeGreaterThan(50);
    await c.end();
  });
});

describe('file watch', () => {
  it('reloads on a Kubernetes-style ConfigMap symlink swap, not on an identical one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-cm-'));
    const ports = { adminPort: await freeTcpPort(), port: await freeTcpPort() };
    const cm = configMapDir(dir, renderConfig(info.nodes, user, { ...ports, weights: { pg1: 1, pg2: 1 } }));
    const p = await startOpsProxy(info.nodes, user, ports, { configPath: cm.path, dir });
    try {
      const sha0 = p.app.status().config.sha256;
      cm.swap(renderConfig(info.nodes, user, { ...ports, weights: { pg1: 1, pg2: 1 } }));
      await sleep(2500); // longer than the 2s poll: an identical swap is no reload
      expect(p.app.status().config.sha256).toBe(sha0);
      cm.swap(renderConfig(info.nodes, user, { ...ports, weights: { pg1: 3, pg2: 0 } }));
      await waitFor('the swap to be reloaded', () => p.app.status().clusters[0]!.nodes.find((n) => n.name === 'pg2')?.weight === 0, 5000);
      expect(p.app.status().config.sha256).not.toBe(sha0);
      const m = await (await p.admin('/metrics')).text();
      expect(sample(m, 'switchyard_config_reloads_total', { result: 'success' })).toBe(1);
      // A broken swap keeps the running config and is counted.
      cm.swap('clusters: [');
      await waitFor('the failure to be counted', async () => sample(await (await p.admin('/metrics')).text(), 'switchyard_config_reloads_total', { result: 'failure' }) === 1, 5000);
      expect(p.app.status().clusters[0]!.nodes.find((n) => n.name === 'pg1')?.weight).toBe(3);
    } finally {
      await p.stop();
    }
  });
});

describe('drain and enable, admin tokens', () => {
  let p: OpsProxy;
  beforeAll(async () => {
    p = await startOpsProxy(info.nodes, user, {}, { watch: false });
  });
  afterAll(async () => p?.stop());

  it('a drained replica gets no new work; its running transaction finishes there; enable brings it back', async () => {
    const tx = new pg.Client({ host: '127.0.0.1', port: p.port, user: user.user, password: user.password, database: info.database });
    await tx.connect();
    await tx.query('BEGIN READ ONLY');
    const port0 = (await tx.query('SELECT inet_server_port() AS port')).rows[0].port as number;
    const node = info.nodes.find((n) => n.port === port0)!;
    expect(node.name).not.toBe('pg0');
    const res = await p.admin(`/clusters/main/nodes/${node.name}/drain`, { method: 'POST' });
    expect(res.status).toBe(200);
    const st = p.app.status().clusters[0]!.nodes.find((n) => n.name === node.name)!;
    expect(st.drained).toBe(true);
    expect(st.eligible).toBe(false);
    // The open transaction goes on on its node and commits.
    for (let i = 0; i < 5; i++) expect((await tx.query('SELECT inet_server_port() AS port')).rows[0].port).toBe(port0);
    await tx.query('COMMIT');
    await resetStatementStats(info);
    for (let i = 0; i < 100; i++) await tx.query('SELECT abalance FROM pgbench_accounts WHERE aid = $1', [i + 1]);
    const calls = await replicaSelects();
    expect(calls[node.name]).toBe(0);
    expect(calls.pg0).toBe(0);
    expect((await p.admin(`/clusters/main/nodes/${node.name}/enable`, { method: 'POST' })).status).toBe(200);
    await resetStatementStats(info);
    for (let i = 0; i < 100; i++) await tx.query('SELECT abalance FROM pgbench_accounts WHERE aid = $1', [i + 1]);
    expect((await replicaSelects())[node.name]).toBeGreaterThan(20);
    await tx.end();
    expect((await p.admin('/clusters/main/nodes/nope/drain', { method: 'POST' })).status).toBe(404);
  });

  it('POST needs the bearer token: 401 without or wrong, 403 when none is configured; unknown paths 404', async () => {
    expect((await p.admin('/reload', { method: 'POST', token: null })).status).toBe(401);
    expect((await p.admin('/reload', { method: 'POST', token: 'wrong' })).status).toBe(401);
    expect((await p.admin('/clusters/main/nodes/pg1/drain', { method: 'POST', token: null })).status).toBe(401);
    expect(p.app.status().clusters[0]!.nodes.find((n) => n.name === 'pg1')!.drained).toBe(false);
    expect((await p.admin('/nope')).status).toBe(404);
    expect((await p.admin('/nope', { method: 'POST' })).status).toBe(404);
    expect((await p.admin('/metrics', { method: 'DELETE' })).status).toBe(404);
    // GETs need no token.
    expect((await p.admin('/status', { token: null })).status).toBe(200);
    writeFileSync(p.configPath, renderConfig(info.nodes, user, { adminPort: p.adminPort, port: p.port, token: '' }));
    expect((await p.app.reload()).ok).toBe(true);
    expect((await p.admin('/reload', { method: 'POST' })).status).toBe(403);
    expect((await p.admin('/clusters/main/nodes/pg1/drain', { method: 'POST' })).status).toBe(403);
  });
});
