import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { ClusterConfig } from '../config/types.js';
import { parseLsn } from '../routing/topology.js';
import type { Logger } from '../observability/logger.js';
import { buildSnapshot, nextHealth, pushSample, type NodeHealth, type NodeProbe, type PositionSample } from './decide.js';
import type { TopologyHolder } from './holder.js';
import { monitorLoginChanged } from './monitor-login.js';
import { PatroniDiscovery } from './patroni-fetch.js';
import { withPatroni } from './patroni.js';

/**
 * node-postgres TLS options for the monitoring connection, as the pools use backend_tls
 * (src/backend/pg/connect.ts): verify-full checks the chain against `ca` (or the system's
 * CAs) and the node's name; require and prefer encrypt without checking.
 */
function monitorSsl(tlsCfg: ClusterConfig['backend_tls']): false | { rejectUnauthorized: boolean; ca?: Buffer } {
  if (tlsCfg.mode === 'disable') return false;
  if (tlsCfg.mode !== 'verify-full') return { rejectUnauthorized: false };
  return tlsCfg.ca ? { rejectUnauthorized: true, ca: readFileSync(tlsCfg.ca) } : { rejectUnauthorized: true };
}

const PROBE_SQL =
  'SELECT pg_is_in_recovery() AS r, ' +
  'CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text AS pos';

/**
 * Probes every node of a PostgreSQL cluster each health.interval over one
 * dedicated monitoring connection per node (re-opened when it breaks), and
 * publishes a new snapshot after every round. The monitoring login is the
 * cluster's first user, on database `postgres`.
 */
export class PgTopologyMonitor {
  private readonly clients = new Map<string, pg.Client>();
  /** Nodes that answered backend_tls: prefer without TLS: monitored over plain connections. */
  private readonly plainNodes = new Set<string>();
  private readonly health = new Map<string, NodeHealth>();
  private readonly history: PositionSample[] = [];
  private readonly drained = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private version = 0;
  private running = false;
  private stopped = false;
  /** Nodes whose probe is still running (a hung node's lasts up to health.timeout). */
  private readonly inflight = new Set<string>();
  /** Nodes whose monitoring login a reload changed while a probe ran on it: re-opened when that probe ends. */
  private readonly reopen = new Set<string>();
  /** Probes that finished since the last round applied them, with when each started. */
  private readonly done: { probe: NodeProbe; startedAt: number }[] = [];
  /** Per node, when its last successful probe started: its position was read after that. */
  private readonly probedAt = new Map<string, number>();
  /** discovery.patroni: roles confirmed by Patroni's /cluster (src/topology/patroni.ts). */
  private patroni: PatroniDiscovery | null = null;

  constructor(
    private config: ClusterConfig,
    private readonly holder: TopologyHolder,
    private readonly log: Logger,
  ) {
    this.configurePatroni();
  }

  private configurePatroni(): void {
    const urls = this.config.discovery?.patroni;
    if (!urls) {
      this.patroni?.stop();
      this.patroni = null;
    } else if (this.patroni) this.patroni.setUrls(urls);
    else this.patroni = new PatroniDiscovery(urls, this.log.child({ discovery: 'patroni' }));
  }

  start(): void {
    void this.round();
  }

  /** Apply a reloaded config (node set, health settings). */
  update(config: ClusterConfig): void {
    const before = this.config;
    this.config = config;
    this.configurePatroni();
    // A removed node's monitoring connection closes; one whose address or login changed re-opens
    // for the next probe (a probe running on it finishes first, so the reload costs no failed check).
    for (const name of [...this.clients.keys()]) {
      if (!monitorLoginChanged(before, config, name)) continue;
      if (this.inflight.has(name) && config.nodes.some((n) => n.name === name)) this.reopen.add(name);
      else this.dropClient(name);
    }
    // Weights, node set and budgets are config, not probe results: publish them now, so a
    // reload is in effect when it answers (waiting for the next round cost up to a second each).
    this.publish();
  }

  setDrained(node: string, drained: boolean): void {
    if (drained) this.drained.add(node);
    else this.drained.delete(node);
    this.publish();
  }

  /**
   * A connection to `node` failed on the hot path: it counts as a refused
   * check, so the node is down now rather than after `fall` rounds.
   */
  reportFailure(node: string, error: string): void {
    const before = this.health.get(node);
    if (!before?.up) return;
    const after = nextHealth(before, { name: node, ok: false, refused: true, error }, this.config.health.fall, this.config.health.rise);
    this.health.set(node, after);
    if (!after.up) {
      this.log.warn({ node, error }, 'node is down (connection failed on the hot path)');
      this.publish();
    }
  }

  stop(): void {
    this.stopped = true;
    this.patroni?.stop();
    if (this.timer) clearTimeout(this.timer);
    for (const name of [...this.clients.keys()]) this.dropClient(name);
  }

  /**
   * One probe round: 1. start a probe on every node that has none running,
   * 2. wait for them, but no longer than one interval, so a hung node (held
   * up to health.timeout) does not slow the checks of the others; its result
   * lands in a later round, 3. apply what finished, 4. publish, 5. schedule.
   */
  private async round(): Promise<void> {
    if (this.stopped || this.running) return;
    this.running = true;
    const started = Date.now();
    const interval = this.config.health.interval;
    try {
      const mine: Promise<void>[] = [];
      // Patroni's view is fetched alongside the probes and waited for as one of them.
      if (this.patroni) mine.push(this.patroni.poll(this.config.health.timeout));
      for (const n of this.config.nodes) {
        if (this.inflight.has(n.name)) continue;
        this.inflight.add(n.name);
        const startedAt = Date.now();
        mine.push(
          this.probe(n.name).then((probe) => {
            this.inflight.delete(n.name);
            if (this.reopen.delete(n.name)) this.dropClient(n.name);
            this.done.push({ probe, startedAt });
          }),
        );
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(mine), new Promise<void>((r) => (timer = setTimeout(r, interval)))]);
      clearTimeout(timer);
      const { fall, rise } = this.config.health;
      for (const { probe: p, startedAt } of this.done.splice(0)) {
        if (!this.config.nodes.some((n) => n.name === p.name)) continue;
        const before = this.health.get(p.name);
        const after = nextHealth(before, p, fall, rise);
        if (before && before.up !== after.up) this.log.warn({ node: p.name, up: after.up, error: p.error }, after.up ? 'node is up' : 'node is down');
        if (before && before.role !== after.role && after.role !== 'unknown') this.log.info({ node: p.name, role: after.role }, 'node role changed');
        this.health.set(p.name, after);
        if (p.ok) this.probedAt.set(p.name, startedAt);
      }
      this.publish();
    } finally {
      this.running = false;
      if (!this.stopped) {
        const wait = Math.max(0, interval - (Date.now() - started));
        this.timer = setTimeout(() => void this.round(), wait);
        this.timer.unref();
      }
    }
  }

  private publish(): void {
    const now = Date.now();
    // With discovery.patroni, only Patroni's leader that is writable itself is the primary (patroni.ts).
    const patroni = this.patroni?.decide(this.config.nodes, this.health) ?? null;
    const health = patroni?.health ?? this.health;
    // Built twice: the first pass finds the primary whose position joins the
    // history, the second measures lag against a history that includes it.
    const snap0 = buildSnapshot(this.inputs(), health, this.history, this.version, now);
    if (snap0.primary) {
      const pos = health.get(snap0.primary)?.position;
      // Keep enough history to measure lag well past the time budget.
      if (pos !== null && pos !== undefined) pushSample(this.history, { at: now, position: pos }, Math.max(60_000, 10 * this.config.routing.max_replica_lag.time));
    }
    const prev = this.holder.current();
    if (prev.primary !== snap0.primary && prev.version > 0) this.log.warn({ from: prev.primary, to: snap0.primary }, 'primary changed');
    if (snap0.splitBrain && !prev.splitBrain) this.log.error({ cluster: this.config.name }, 'split brain: more than one writable node; writes are refused');
    this.version++;
    // Read-your-writes needs to know when the primary's position was read (src/frontend/causal.ts).
    const sampledAt = snap0.primary ? (this.probedAt.get(snap0.primary) ?? 0) : 0;
    const snap = buildSnapshot(this.inputs(), health, this.history, this.version, now, sampledAt);
    this.holder.publish(patroni ? withPatroni(snap, patroni) : snap);
  }

  private inputs() {
    const roles = this.config.roles;
    return {
      cluster: this.config.name,
      nodes: this.config.nodes,
      staticPrimary: roles === 'auto' ? null : roles.primary,
      fall: this.config.health.fall,
      rise: this.config.health.rise,
      drained: this.drained,
    };
  }

  private async probe(name: string): Promise<NodeProbe> {
    const timeout = this.config.health.timeout;
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        this.query(name),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeout}ms`)), timeout);
        }),
      ]);
      return result;
    } catch (e) {
      // A hung or broken monitoring connection is replaced on the next round.
      this.dropClient(name);
      const refused = (e as { code?: string }).code === 'ECONNREFUSED';
      return { name, ok: false, refused, error: (e as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  private async query(name: string): Promise<NodeProbe> {
    let client = this.clients.get(name);
    if (!client) {
      const node = this.config.nodes.find((n) => n.name === name)!;
      const user = this.config.users[0]!;
      client = new pg.Client({
        host: node.host,
        port: node.port,
        user: user.name,
        password: user.password,
        database: 'postgres',
        application_name: 'switchyard-monitor',
        connectionTimeoutMillis: this.config.health.timeout,
        ssl: this.plainNodes.has(name) ? false : monitorSsl(this.config.backend_tls),
      });
      client.on('error', () => this.dropClient(name));
      this.clients.set(name, client);
      try {
        await client.connect();
      } catch (e) {
        // backend_tls: prefer falls back to plain when the node has no TLS (as the pools do); the next round retries so.
        if (this.config.backend_tls.mode === 'prefer' && /does not support SSL/i.test((e as Error).message)) this.plainNodes.add(name);
        throw e;
      }
    }
    const res = await client.query<{ r: boolean; pos: string | null }>(PROBE_SQL);
    const row = res.rows[0]!;
    return { name, ok: true, writable: !row.r, position: row.pos ? parseLsn(row.pos) : null };
  }

  private dropClient(name: string): void {
    const c = this.clients.get(name);
    if (!c) return;
    this.clients.delete(name);
    c.end().catch(() => undefined);
  }
}
