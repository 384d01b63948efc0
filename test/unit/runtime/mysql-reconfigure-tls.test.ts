import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfigText } from '../../../src/config/load.js';
import type { ClusterConfig, LimitsConfig } from '../../../src/config/types.js';
import { initialSnapshot } from '../../../src/app.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { MysqlClusterRuntime } from '../../../src/runtime/mysql-cluster.js';
import { TopologyHolder } from '../../../src/topology/holder.js';

/** A MySQL reload that changes backend_tls or pool.connect_timeout replaces the pools (their logins change). */
function load(extra: { timeout?: string; tls?: string } = {}): { cluster: ClusterConfig; limits: LimitsConfig } {
  const text = `clusters:
  - name: main
    protocol: mysql
    listen: 127.0.0.1:6432
    nodes:
      - { name: n1, host: 127.0.0.1, port: 3306 }
    users:
      - { name: app, password: secret }
    pool:
      connect_timeout: ${extra.timeout ?? '5s'}
${extra.tls ? `    backend_tls: ${extra.tls}\n` : ''}`;
  const r = loadConfigText(text, { env: {} });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return { cluster: r.config.clusters[0]!, limits: r.config.limits };
}

const log = pino({ level: 'silent' });
const metrics = new Metrics({ clusters: () => [], maxClientConnections: () => 0 }, { defaultMetrics: false });
const key = { user: 'app', capabilities: 0, charset: 45 };

describe('MysqlClusterRuntime.reconfigure: backend_tls and pool.connect_timeout', () => {
  it('keeps the pool for an identical config; replaces it for a new timeout, TLS mode or CA', async () => {
    const { cluster, limits } = load();
    const rt = new MysqlClusterRuntime(cluster, limits, new TopologyHolder(initialSnapshot(cluster)), metrics, log);
    const p0 = rt.pool('n1', key);
    rt.reconfigure(load().cluster, limits);
    expect(rt.pool('n1', key)).toBe(p0);
    rt.reconfigure(load({ timeout: '2s' }).cluster, limits);
    const p1 = rt.pool('n1', key);
    expect(p1).not.toBe(p0);
    rt.reconfigure(load({ timeout: '2s', tls: '{ mode: require }' }).cluster, limits);
    const p2 = rt.pool('n1', key);
    expect(p2).not.toBe(p1);
    rt.reconfigure(load({ timeout: '2s', tls: '{ mode: require }' }).cluster, limits);
    expect(rt.pool('n1', key)).toBe(p2);
    rt.reconfigure(load({ timeout: '2s', tls: '{ mode: require, ca: /a/ca.crt }' }).cluster, limits);
    const p3 = rt.pool('n1', key);
    expect(p3).not.toBe(p2);
    rt.reconfigure(load({ timeout: '2s', tls: '{ mode: verify-full, ca: /a/ca.crt }' }).cluster, limits);
    expect(rt.pool('n1', key)).not.toBe(p3);
    await rt.close();
  });
});
