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
  /** discovery.patroni: Patroni's member name, role, state and tags for this node. */
  patroni?: { member: string | null; role: string | null; state: string | null; noloadbalance: boolean; nofailover: boolean };
  /** MySQL Group Replication: the member's MEMBER_STATE and MEMBER_ROLE as it reports them itself. */
  group_replication?: { member_state: string; member_role: string; multi_primary: boolean };
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
  /** discovery.patroni: did the last GET /cluster succeed, and the leader it names. */
  patroni?: { reachable: boolean; leader: string | null };
  max_replica_lag_bytes: number;
  max_replica_lag_seconds: number;
  /** Statements classified read / write since start (routing decisions). */
  reads?: number;
  writes?: number;
  nodes: NodeStatus[];
}

export class Metrics {
  readonly registry = new client.Registry();
  readonly reloads: client.Counter<'result'>;
  /** The per-cluster counters sessions increment; the registry reads them at scrape time. */
  private readonly counterSets = new Map<string, QueryCounters>();

  constructor(source: StatusSource, opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
    // Hot-path counts live in plain fields of QueryCounters (an add each); these metrics
    // copy them at scrape time. prom-client's own inc()/observe() hash the label set on every
    // call, which cost more than the rest of a pgbench -S transaction's bookkeeping together.
    const sets = () => this.counterSets.values();
    new client.Counter<'cluster' | 'node' | 'route'>({
      name: 'switchyard_queries_total',
      help: 'Statements (or extended-protocol batches) sent to a node, by route.',
      labelNames: ['cluster', 'node', 'route'],
      registers,
      collect() {
        this.reset();
        for (const qc of sets())
          for (const [route, byNode] of [['primary', qc.primaryQueries], ['replica', qc.replicaQueries]] as const)
            for (const [node, t] of byNode) this.inc({ cluster: qc.cluster, node, route }, t.n);
      },
    });
    registers[0]!.registerMetric(new ScrapeTimeHistogram('switchyard_query_duration_seconds', 'Time from forwarding a statement to its ReadyForQuery/OK, by route.', () => {
      const out: { labels: { cluster: string; route: string }; h: LatencyHistogram }[] = [];
      for (const qc of sets()) out.push({ labels: { cluster: qc.cluster, route: 'primary' }, h: qc.durationPrimary }, { labels: { cluster: qc.cluster, route: 'replica' }, h: qc.durationReplica });
      return out;
    }) as unknown as client.Metric);
    new client.Counter<'cluster' | 'class' | 'reason'>({
      name: 'switchyard_routing_decisions_total',
      help: 'Routing decisions by statement class and reason.',
      labelNames: ['cluster', 'class', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const qc of sets()) for (const [cls, byReason] of qc.decisions) for (const [reason, d] of byReason) this.inc({ cluster: qc.cluster, class: cls, reason }, d.n);
      },
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
    new client.Counter<'cluster' | 'kind'>({
      name: 'switchyard_errors_total',
      help: 'Errors by kind (a stable error code or a protocol failure class).',
      labelNames: ['cluster', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const qc of sets()) for (const [kind, n] of qc.errors) this.inc({ cluster: qc.cluster, kind }, n);
      },
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

  /** The counters a cluster's sessions increment (one set per cluster name, kept across reloads). */
  queryCounters(cluster: string): QueryCounters {
    let qc = this.counterSets.get(cluster);
    if (!qc) this.counterSets.set(cluster, (qc = new QueryCounters(cluster)));
    return qc;
  }
}

/** Upper bounds of switchyard_query_duration_seconds, in seconds. */
export const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** A fixed-bucket histogram whose observe() is a loop and an add; exported at scrape time. */
export class LatencyHistogram {
  /** Per bucket (not cumulative); the last slot counts values above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[] = DURATION_BUCKETS) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
  }
}

/**
 * A histogram for prom-client's registry built from LatencyHistograms at
 * scrape time (the shape Registry.getMetricsAsString and the worker
 * aggregator read: _bucket lines with le, then _sum and _count).
 */
class ScrapeTimeHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly series: () => { labels: Record<string, string>; h: LatencyHistogram }[],
  ) {}

  get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const { labels, h } of this.series()) {
      let cumulative = 0;
      for (let i = 0; i < h.bounds.length; i++) {
        cumulative += h.counts[i]!;
        values.push({ labels: { ...labels, le: h.bounds[i]! }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { ...labels, le: '+Inf' }, value: h.count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: h.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: h.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {}
}

/**
 * What a session counts per statement: plain numbers, one add each. The
 * registry copies them into switchyard_queries_total, _routing_decisions_total,
 * _errors_total and _query_duration_seconds when scraped; /status reads the same.
 */
export class QueryCounters {
  /** Statements sent per node, by route. */
  readonly primaryQueries = new Map<string, { n: number }>();
  readonly replicaQueries = new Map<string, { n: number }>();
  /** Routing decisions by class, then reason. */
  readonly decisions = new Map<string, Map<string, { n: number }>>();
  readonly errors = new Map<string, number>();
  reads = 0;
  writes = 0;
  readonly durationPrimary = new LatencyHistogram();
  readonly durationReplica = new LatencyHistogram();

  constructor(readonly cluster: string) {}

  query(node: string, route: 'primary' | 'replica'): void {
    const byNode = route === 'primary' ? this.primaryQueries : this.replicaQueries;
    const t = byNode.get(node);
    if (t) t.n++;
    else byNode.set(node, { n: 1 });
  }

  /** Statements sent to `node` since start, both routes. */
  nodeQueries(node: string): number {
    return (this.primaryQueries.get(node)?.n ?? 0) + (this.replicaQueries.get(node)?.n ?? 0);
  }

  decision(cls: string, reason: string): void {
    if (cls === 'write') this.writes++;
    else this.reads++;
    // Two levels, so counting allocates nothing (a `${cls}|${reason}` key would, per statement).
    let byReason = this.decisions.get(cls);
    if (!byReason) this.decisions.set(cls, (byReason = new Map()));
    const d = byReason.get(reason);
    if (d) d.n++;
    else byReason.set(reason, { n: 1 });
  }

  error(kind: string): void {
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }
}
