import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfigText } from '../../../src/config/load.js';
import type { ClusterConfig, LimitsConfig } from '../../../src/config/types.js';
import { initialSnapshot } from '../../../src/app.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { PgClusterRuntime } from '../../../src/runtime/pg-cluster.js';
import { MysqlClusterRuntime } from '../../../src/runtime/mysql-cluster.js';
import { TopologyHolder } from '../../../src/topology/holder.js';
import { monitorLoginChanged } from '../../../src/topology/monitor-login.js';

/** Which pools a reload replaces (the integration test is test/integration/ops-reload-users.test.ts). */
function load(protocol: 'postgres' | 'mysql', extra: { port2?: number; password?: string; users?: string; timeout?: string; tls?: string } = {}): { cluster: ClusterConfig; limits: LimitsConfig } {
  const users = extra.users ?? `      - { name: app, password: ${extra.password ?? 'secret'} }\n      - { name: other, password: other }\n`;
  const text = `clusters:
  - name: main
    protocol: ${protocol}
    listen: 127.0.0.1:6432
    nodes:
      - { name: n1, host: 127.0.0.1, port: 5432 }
      - { name: n2, host: 127.0.0.1, port: ${extra.port2 ?? 5433} }
    users:
${users}    pool:
      connect_timeout: ${extra.timeout ?? '5s'}
${extra.tls ? `    backend_tls: { mode: ${extra.tls} }\n` : ''}`;
  const r = loadConfigText(text, { env: {} });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return { cluster: r.config.clusters[0]!, limits: r.config.limits };
}

const log = pino({ level: 'silent' });
const metrics = new Metrics({ clusters: () => [], maxClientConnections: () => 0 }, { defaultMetrics: false });

describe('PgClusterRuntime.reconfigure', () => {
  function runtime(): PgClusterRuntime {
    const { cluster, limits } = load('postgres');
    return new PgClusterRuntime(cluster, limits, new TopologyHolder(initialSnapshot(cluster)), metrics, log);
  }
  const params = {};

  it('keeps pools when nothing a login uses changed, replaces those whose password, address, timeout or TLS did', async () => {
    const rt = runtime();
    const a1 = rt.pool('n1', 'app', 'db', params);
    const a2 = rt.pool('n2', 'app', 'db', params);
    const o1 = rt.pool('n1', 'other', 'db', params);
    rt.reconfigure(load('postgres').cluster, load('postgres').limits);
    expect(rt.pool('n1', 'app', 'db', params)).toBe(a1);

    rt.reconfigure(load('postgres', { password: 'rotated' }).cluster, load('postgres').limits);
    const b1 = rt.pool('n1', 'app', 'db', params);
    expect(b1).not.toBe(a1);
    expect(rt.pool('n2', 'app', 'db', params)).not.toBe(a2);
    expect(rt.pool('n1', 'other', 'db', params)).toBe(o1);
    await expect(a1.acquire()).rejects.toThrow(/closed/);

    rt.reconfigure(load('postgres', { password: 'rotated', port2: 6000 }).cluster, load('postgres').limits);
    expect(rt.pool('n1', 'app', 'db', params)).toBe(b1);
    expect(rt.pool('n2', 'other', 'db', params)).not.toBe(o1);

    rt.reconfigure(load('postgres', { password: 'rotated', port2: 6000, timeout: '3s' }).cluster, load('postgres').limits);
    const c1 = rt.pool('n1', 'app', 'db', params);
    expect(c1).not.toBe(b1);
    rt.reconfigure(load('postgres', { password: 'rotated', port2: 6000, timeout: '3s', tls: 'prefer' }).cluster, load('postgres').limits);
    expect(rt.pool('n1', 'app', 'db', params)).not.toBe(c1);
    await rt.close();
  });

  it("a removed user's pools stay for its open sessions; client auth no longer knows it", async () => {
    const rt = runtime();
    const o1 = rt.pool('n1', 'other', 'db', params);
    rt.reconfigure(load('postgres', { users: '      - { name: app, password: secret }\n' }).cluster, load('postgres').limits);
    expect(rt.password('other')).toBeUndefined();
    expect(rt.pool('n1', 'other', 'db', params)).toBe(o1);
    await rt.close();
  });
});

describe('MysqlClusterRuntime.reconfigure', () => {
  it('replaces the pools of a user whose password changed and of a node whose port changed', async () => {
    const { cluster, limits } = load('mysql');
    const rt = new MysqlClusterRuntime(cluster, limits, new TopologyHolder(initialSnapshot(cluster)), metrics, log);
    const key = (user: string) => ({ user, capabilities: 0, charset: 45 });
    const a1 = rt.pool('n1', key('app'));
    const o1 = rt.pool('n1', key('other'));
    const o2 = rt.pool('n2', key('other'));
    rt.reconfigure(load('mysql', { password: 'rotated' }).cluster, limits);
    expect(rt.pool('n1', key('app'))).not.toBe(a1);
    expect(rt.pool('n1', key('other'))).toBe(o1);
    rt.reconfigure(load('mysql', { password: 'rotated', port2: 6000 }).cluster, limits);
    expect(rt.pool('n1', key('other'))).toBe(o1);
    expect(rt.pool('n2', key('other'))).not.toBe(o2);
    await rt.close();
  });
});

describe('monitorLoginChanged', () => {
  it('is true for a new address, a new first-user password, TLS or timeout, or a removed node', () => {
    const base = load('postgres').cluster;
    expect(monitorLoginChanged(base, load('postgres').cluster, 'n1')).toBe(false);
    expect(monitorLoginChanged(base, load('postgres', { port2: 6000 }).cluster, 'n1')).toBe(false);
    expect(monitorLoginChanged(base, load('postgres', { port2: 6000 }).cluster, 'n2')).toBe(true);
    expect(monitorLoginChanged(base, load('postgres', { password: 'x' }).cluster, 'n1')).toBe(true);
    expect(monitorLoginChanged(base, load('postgres', { tls: 'require' }).cluster, 'n1')).toBe(true);
    expect(monitorLoginChanged(base, load('postgres').cluster, 'gone')).toBe(true);
  });
});
