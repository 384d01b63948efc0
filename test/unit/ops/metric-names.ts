import { Metrics, type ClusterStatus } from '../../../src/observability/metrics.js';

/** A cluster status with one primary and one replica, for metrics built without servers. */
export function fakeStatus(): ClusterStatus {
  const node = (name: string, role: 'primary' | 'replica') => ({
    name,
    host: '127.0.0.1',
    port: 5432,
    role,
    up: true,
    weight: 1,
    lag_bytes: role === 'replica' ? 10 : null,
    lag_seconds: role === 'replica' ? 0.01 : null,
    eligible: role === 'replica',
    drained: false,
    pool: { active: 1, idle: 2, waiting: 0 },
  });
  return {
    name: 'main',
    protocol: 'postgres',
    client_connections: 3,
    primary: 'pg0',
    split_brain: false,
    max_replica_lag_bytes: 16 << 20,
    max_replica_lag_seconds: 1,
    nodes: [node('pg0', 'primary'), node('pg1', 'replica')],
  };
}

/** Every series name switchyard's /metrics can show (histograms as _bucket/_sum/_count). */
export async function exportedMetricNames(): Promise<Set<string>> {
  const m = new Metrics({ clusters: () => [fakeStatus()], maxClientConnections: () => 100 });
  const names = new Set<string>();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(metric.name + s);
  }
  return names;
}

/** The metric names a PromQL expression mentions (identifiers followed by `{`, `[`, `)` or space that are not functions/keywords). */
export function metricsInExpr(expr: string): string[] {
  return [...expr.matchAll(/\b(switchyard_[a-z_]+)\b/g)].map((m) => m[1]!);
}
