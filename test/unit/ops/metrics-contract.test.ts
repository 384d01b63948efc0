import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../src/observability/metrics.js';
import { fakeStatus } from './metric-names.js';

/** Every name and label of the documented metrics, plus Node's process metrics. */
const CONTRACT: Record<string, string[]> = {
  switchyard_client_connections: ['cluster'],
  switchyard_queries_total: ['cluster', 'node', 'route'],
  switchyard_query_duration_seconds: ['cluster', 'route'],
  switchyard_routing_decisions_total: ['cluster', 'class', 'reason'],
  switchyard_backend_up: ['cluster', 'node', 'role'],
  switchyard_replica_lag_bytes: ['cluster', 'node'],
  switchyard_replica_lag_seconds: ['cluster', 'node'],
  switchyard_replica_eligible: ['cluster', 'node'],
  switchyard_pool_connections: ['cluster', 'node', 'state'],
  switchyard_pool_waiting: ['cluster', 'node'],
  switchyard_config_reloads_total: ['result'],
  switchyard_errors_total: ['cluster', 'kind'],
};

describe('metrics', () => {
  it('export every documented name with its labels, computed at scrape time, plus process metrics', async () => {
    let st = fakeStatus();
    const m = new Metrics({ clusters: () => [st], maxClientConnections: () => 100 });
    const c = m.queryCounters('main');
    c.query('pg0', 'primary');
    c.query('pg1', 'replica');
    c.decision('read', 'classified');
    c.error('SWITCHYARD_NO_PRIMARY');
    c.durationPrimary.observe(0.001);
    m.reloads.inc({ result: 'success' });
    const json = await m.registry.getMetricsAsJSON();
    const byName = new Map(json.map((x) => [x.name, x]));
    for (const [name, labels] of Object.entries(CONTRACT)) {
      const metric = byName.get(name);
      expect(metric, name).toBeDefined();
      const values = (metric as unknown as { values: { labels: Record<string, string> }[] }).values.filter((v) => !('le' in v.labels));
      expect(values.length, `${name} has samples`).toBeGreaterThan(0);
      for (const v of values) expect(Object.keys(v.labels).sort(), name).toEqual([...labels].sort());
    }
    expect(byName.has('process_cpu_user_seconds_total')).toBe(true);
    expect(byName.has('nodejs_eventloop_lag_seconds')).toBe(true);
    // Gauges follow the state at each scrape.
    const text1 = await m.registry.metrics();
    expect(text1).toMatch(/switchyard_client_connections\{cluster="main"\} 3/);
    st = { ...st, client_connections: 7, split_brain: true };
    const text2 = await m.registry.metrics();
    expect(text2).toMatch(/switchyard_client_connections\{cluster="main"\} 7/);
    expect(text2).toMatch(/switchyard_primary_count\{cluster="main"\} 2/);
    expect(text2).toMatch(/switchyard_max_client_connections 100/);
  });
});
