import client from 'prom-client';

/**
 * What the gauges show, read at scrape time from the same state /status uses.
 * The hot path never touches a gauge; it only increments counters whose
 * children it looked up once (see QueryCounters).
 */
export interface StatusSource {
  clusters(): ClusterStatus[];
  /** limits.max_client_connections, exported so alerts can compare against it. */
  maxClientConnections?(): number;
}

export interface NodeStatus {
  name: string;
  host: string;
  port: number;
  role: 'primary' | 'replica' | 'unknown';
  up: boolean;
  weight: number;
  lag_bytes: number | null;
  lag_seconds: number | null;
  eligible: boolean;
  ineligible_reason?: string;
  drained: boolean;
  pool: { active: number; idle: number; waiting: number };
  /** Statements sent to this node since start (the stats page turns it into a rate). */
  queries?: number;
}

export interface ClusterStatus {
  name: string;
  protocol: 'postgres' | 'mysql';
  client_connections: number;
  /** Sessions held on one backend connection for good (temp tables, LISTEN, ...). */
  pinned_sessions?: number;
  /** Autocommit reads run again after their backend connection died unanswered (since start). */
  read_retries?: number;
  primary: string | null;
  split_brain: boolean;
  max_replica_lag_bytes: number;
  max_replica_lag_seconds: number;
  /** Statements classified read / write since start (routing decisions). */
  reads?: number;
  writes?: number;
  nodes: NodeStatus[];
}

export class Metrics {
  readonly registry = new client.Registry();
  readonly queries: client.Counter<'cluster' | 'node' | 'route'>;
  readonly queryDuration: client.Histogram<'cluster' | 'route'>;
  readonly routingDecisions: client.Counter<'cluster' | 'class' | 'reason'>;
  readonly reloads: client.Counter<'result'>;
  readonly errors: client.Counter<'cluster' | 'kind'>;

  constructor(source: StatusSource, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
    this.queries = new client.Counter({
      name: 'switchyard_queries_total',
      help: 'Statements (or extended-protocol batches) sent to a node, by route.',
      labelNames: ['cluster', 'node', 'route'],
      registers,
    });
    this.queryDuration = new client.Histogram({
      name: 'switchyard_query_duration_seconds',
      help: 'Time from forwarding a statement to its ReadyForQuery/OK, by route.',
      labelNames: ['cluster', 'route'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.routingDecisions = new client.Counter({
      name: 'switchyard_routing_decisions_total',
      help: 'Routing decisions by statement class and reason.',
      labelNames: ['cluster', 'class', 'reason'],
      registers,
    });
    this.reloads = new client.Counter({
      name: 'switchyard_config_reloads_total',
      help: 'Configuration reloads by result.',
      labelNames: ['result'],
      // With --workers every worker applies each reload: count it once, not once per worker.
      aggregator: 'max',
      registers,
    });
    // Both series exist from the start at 0, so increase() sees the first failure.
    for (const result of ['success', 'failure']) this.reloads.inc({ result }, 0);
    this.errors = new client.Counter({
      name: 'switchyard_errors_total',
      help: 'Errors by kind (a stable error code or a protocol failure class).',
      labelNames: ['cluster', 'kind'],
      registers,
    });
    // aggregator: how /metrics combines workers (--workers N). Per-process counts sum; what
    // every worker sees alike (topology, budgets) takes the max so N workers do not multiply it.
    const gauge = <L extends string>(name: string, help: string, labelNames: L[], collect: (g: client.Gauge<L>) => void, aggregator: client.Aggregator = 'sum') =>
      new client.Gauge<L>({
        name,
        help,
        labelNames,
        aggregator,
        registers,
        collect() {
          this.reset();
          collect(this);
        },
      });
    gauge('switchyard_client_connections', 'Open client connections.', ['cluster'], (g) => {
      for (const c of source.clusters()) g.set({ cluster: c.name }, c.client_connections);
    });
    gauge('switchyard_backend_up', 'Whether a node passes its health checks (1) or not (0).', ['cluster', 'node', 'role'], (g) => {
      for (const c of source.clusters()) for (const n of c.nodes) g.set({ cluster: c.name, node: n.name, role: n.role }, n.up ? 1 : 0);
    }, 'max');
    gauge('switchyard_replica_lag_bytes', 'Replication lag of a replica in bytes of WAL/binlog.', ['cluster', 'node'], (g) => {
      for (const c of source.clusters()) for (const n of c.nodes) if (n.role === 'replica' && n.lag_bytes !== null) g.set({ cluster: c.name, node: n.name }, n.lag_bytes);
    }, 'max');
    gauge('switchyard_replica_lag_seconds', 'Replication lag of a replica in seconds.', ['cluster', 'node'], (g) => {
      for (const c of source.clusters()) for (const n of c.nodes) if (n.role === 'replica' && n.lag_seconds !== null) g.set({ cluster: c.name, node: n.name }, n.lag_seconds);
    }, 'max');
    gauge('switchyard_replica_eligible', 'Whether a replica may serve reads now (1) or not (0).', ['cluster', 'node'], (g) => {
      for (const c of source.clusters()) for (const n of c.nodes) if (n.role !== 'primary') g.set({ cluster: c.name, node: n.name }, n.eligible ? 1 : 0);
    }, 'max');
    gauge('switchyard_pool_connections', 'Backend connections per node by state.', ['cluster', 'node', 'state'], (g) => {
      for (const c of source.clusters())
        for (const n of c.nodes) {
          g.set({ cluster: c.name, node: n.name, state: 'active' }, n.pool.active);
          g.set({ cluster: c.name, node: n.name, state: 'idle' }, n.pool.idle);
        }
    });
    gauge('switchyard_pool_waiting', 'Clients waiting for a backend connection per node.', ['cluster', 'node'], (g) => {
      for (const c of source.clusters()) for (const n of c.nodes) g.set({ cluster: c.name, node: n.name }, n.pool.waiting);
    });
    gauge('switchyard_pinned_sessions', 'Client sessions pinned to one backend connection.', ['cluster'], (g) => {
      for (const c of source.clusters()) g.set({ cluster: c.name }, c.pinned_sessions ?? 0);
    });
    new client.Counter<'cluster'>({
      name: 'switchyard_read_retries_total',
      help: 'Autocommit reads retried on another connection after theirs died before answering.',
      labelNames: ['cluster'],
      registers,
      collect() {
        this.reset();
        for (const c of source.clusters()) this.inc({ cluster: c.name }, c.read_retries ?? 0);
      },
    });
    gauge('switchyard_replica_lag_budget_bytes', 'routing.max_replica_lag.bytes: a replica further behind gets no reads.', ['cluster'], (g) => {
      for (const c of source.clusters()) g.set({ cluster: c.name }, c.max_replica_lag_bytes);
    }, 'max');
    gauge('switchyard_replica_lag_budget_seconds', 'routing.max_replica_lag.time in seconds.', ['cluster'], (g) => {
      for (const c of source.clusters()) g.set({ cluster: c.name }, c.max_replica_lag_seconds);
    }, 'max');
    gauge('switchyard_max_client_connections', 'limits.max_client_connections of this instance.', [], (g) => {
      if (source.maxClientConnections) g.set(source.maxClientConnections());
    });
    gauge('switchyard_primary_count', 'Writable nodes seen (1 is healthy; 0 no primary; 2+ split brain).', ['cluster'], (g) => {
      for (const c of source.clusters()) g.set({ cluster: c.name }, c.split_brain ? 2 : c.primary ? 1 : 0);
    }, 'max');
  }

  /** Counters a session increments per statement, looked up once per (cluster, node). */
  queryCounters(cluster: string): QueryCounters {
    return new QueryCounters(this, cluster);
  }
}

export class QueryCounters {
  private readonly perNode = new Map<string, { counter: client.Counter.Internal; total: { n: number } }>();
  /** Plain totals for /status (per node; reads and writes), kept beside the counters: one add each. */
  private readonly nodeTotals = new Map<string, { n: number }>();
  reads = 0;
  writes = 0;
  private readonly perDecision = new Map<string, client.Counter.Internal>();
  readonly durationPrimary: client.Histogram.Internal<'cluster' | 'route'>;
  readonly durationReplica: client.Histogram.Internal<'cluster' | 'route'>;

  constructor(
    private readonly metrics: Metrics,
    private readonly cluster: string,
  ) {
    this.durationPrimary = metrics.queryDuration.labels({ cluster, route: 'primary' });
    this.durationReplica = metrics.queryDuration.labels({ cluster, route: 'replica' });
  }

  query(node: string, route: 'primary' | 'replica'): void {
    const key = route === 'primary' ? `p${node}` : `r${node}`;
    let c = this.perNode.get(key);
    if (!c) {
      let total = this.nodeTotals.get(node);
      if (!total) this.nodeTotals.set(node, (total = { n: 0 }));
      c = { counter: this.metrics.queries.labels({ cluster: this.cluster, node, route }), total };
      this.perNode.set(key, c);
    }
    c.counter.inc();
    c.total.n++;
  }

  /** Statements sent to `node` since start, both routes. */
  nodeQueries(node: string): number {
    return this.nodeTotals.get(node)?.n ?? 0;
  }

  decision(cls: string, reason: string): void {
    if (cls === 'write') this.writes++;
    else this.reads++;
    const key = `${cls}|${reason}`;
    let c = this.perDecision.get(key);
    if (!c) {
      c = this.metrics.routingDecisions.labels({ cluster: this.cluster, class: cls, reason });
      this.perDecision.set(key, c);
    }
    c.inc();
  }

  error(kind: string): void {
    this.metrics.errors.labels({ cluster: this.cluster, kind }).inc();
  }
}
