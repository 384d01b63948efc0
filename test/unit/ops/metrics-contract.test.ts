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

  it('export the hot-path counts (plain fields) with their values at scrape time; histogram buckets are cumulative', async () => {
    const m = new Metrics({ clusters: () => [] }, { defaultMetrics: false });
    const c = m.queryCounters('main');
    expect(m.queryCounters('main')).toBe(c); // one set per cluster: counts survive a reload's new runtime
    for (let i = 0; i < 3; i++) c.query('pg1', 'replica');
    c.query('pg0', 'primary');
    c.decision('read', 'classified');
    c.decision('read', 'classified');
    c.decision('write', 'classified');
    c.error('SWITCHYARD_NO_PRIMARY');
    for (const v of [0.0002, 0.003, 20]) c.durationReplica.observe(v);
    const text = await m.registry.metrics();
    expect(text).toMatch(/switchyard_queries_total\{cluster="main",node="pg1",route="replica"\} 3\n/);
    expect(text).toMatch(/switchyard_queries_total\{cluster="main",node="pg0",route="primary"\} 1\n/);
    expect(text).toMatch(/switchyard_routing_decisions_total\{cluster="main",class="read",reason="classified"\} 2\n/);
    expect(text).toMatch(/switchyard_errors_total\{cluster="main",kind="SWITCHYARD_NO_PRIMARY"\} 1\n/);
    expect(text).toMatch(/# TYPE switchyard_query_duration_seconds histogram/);
    expect(text).toMatch(/switchyard_query_duration_seconds_bucket\{cluster="main",route="replica",le="0.0001"\} 0\n/);
    expect(text).toMatch(/switchyard_query_duration_seconds_bucket\{cluster="main",route="replica",le="0.00025"\} 1\n/);
    expect(text).toMatch(/switchyard_query_duration_seconds_bucket\{cluster="main",route="replica",le="0.005"\} 2\n/);
    expect(text).toMatch(/switchyard_query_duration_seconds_bucket\{cluster="main",route="replica",le="10"\} 2\n/);
    expect(text).toMatch(/switchyard_query_duration_seconds_bucket\{cluster="main",route="replica",le="\+Inf"\} 3\n/);
    expect(text).toMatch(/switchyard_query_duration_seconds_count\{cluster="main",route="replica"\} 3\n/);
    expect(text).toMatch(/switchyard_query_duration_seconds_sum\{cluster="main",route="replica"\} 20.0032/);
    expect(c.nodeQueries('pg1')).toBe(3);
    expect(c.reads).toBe(2);
  });
});
