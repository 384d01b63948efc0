import { createHash } from 'node:crypto';
import type { ClusterConfig, LimitsConfig } from '../config/types.js';
import { connectPgBackend } from '../backend/pg/connect.js';
import { PgBackendConn } from '../backend/pg/conn.js';
import { Pool } from '../pool/pool.js';
import { Classifier } from '../sql/index.js';
import { Router, explainEligibility } from '../routing/router.js';
import type { TopologySnapshot } from '../routing/topology.js';
import type { Logger } from '../observability/logger.js';
import type { ClusterStatus, Metrics, QueryCounters } from '../observability/metrics.js';
import type { TopologyHolder } from '../topology/holder.js';

/** The startup parameters that select a backend pool besides user and database. */
export type StartupParams = Record<string, string>;

/** Whatever a session registers so a CancelRequest can find it. */
export interface Cancellable {
  cancel(): void;
}

/**
 * Everything a PostgreSQL cluster's client sessions share: its config, the
 * topology snapshot, the classifier, the router, the backend pools and the
 * registry of sessions by their proxy-made BackendKeyData.
 */
export class PgClusterRuntime {
  classifier: Classifier;
  readonly router = new Router();
  readonly counters: QueryCounters;
  /** ParameterStatus values of the first backend login, replayed to clients that log in. */
  private readonly pools = new Map<string, { node: string; pool: Pool<PgBackendConn> }>();
  private readonly sessions = new Map<number, { secret: number; session: Cancellable }>();
  private readonly loginParams = new Map<string, { node: string; params: Map<string, string> }>();
  clientConnections = 0;
  /** Sessions held on one connection for good (temp tables, LISTEN, ...), shown in metrics. */
  pinnedSessions = 0;
  /** Autocommit reads run again after their backend connection died unanswered. */
  readRetries = 0;
  /** Named statements kept prepared per server connection before the least used is closed. */
  get preparedCacheSize(): number {
    return this.config.pool.prepared_statements;
  }

  constructor(
    public config: ClusterConfig,
    public limits: LimitsConfig,
    readonly topology: TopologyHolder,
    readonly metrics: Metrics,
    readonly log: Logger,
  ) {
    this.classifier = new Classifier({
      dialect: 'postgres',
      writeFunctions: config.routing.write_functions,
      readFunctions: config.routing.read_functions,
    });
    this.counters = metrics.queryCounters(config.name);
  }

  /** Set by the composition root: tells the topology monitor that connecting to a node failed. */
  failureSink: ((node: string, error: string) => void) | null = null;

  reportFailure(node: string, err: unknown): void {
    this.failureSink?.(node, err instanceof Error ? err.message : String(err));
  }

  get name(): string {
    return this.config.name;
  }

  snapshot(): TopologySnapshot {
    return this.topology.current();
  }

  password(user: string): string | undefined {
    return this.config.users.find((u) => u.name === user)?.password;
  }

  /**
   * The pool for (node, user, database, startup parameters). Parameters are part
   * of the key so a borrowed connection always carries the client's settings.
   */
  pool(node: string, user: string, database: string, params: StartupParams): Pool<PgBackendConn> {
    const key = `${node}\u0000${loginKey(user, database, params)}`;
    const found = this.pools.get(key);
    if (found) return found.pool;
    const nodeCfg = this.config.nodes.find((n) => n.name === node);
    if (!nodeCfg) throw new Error(`unknown node ${node}`);
    const password = this.password(user) ?? '';
    const cfg = this.config;
    let pool!: Pool<PgBackendConn>;
    pool = new Pool<PgBackendConn>(
      {
        create: async () => {
          const login = await connectPgBackend({
            node,
            host: nodeCfg.host,
            port: nodeCfg.port,
            user,
            password,
            database,
            params,
            tls: cfg.backend_tls,
            connectTimeoutMs: Math.max(cfg.health.timeout, 5000),
          }).catch((err: unknown) => {
            // A failed connect on the hot path counts at once (issue 6): the monitor marks the node down.
            if (isConnectFailure(err)) this.reportFailure(node, err);
            throw err;
          });
          const conn = new PgBackendConn(node, nodeCfg.host, nodeCfg.port, login.socket, login);
          conn.onIdleClose = (c) => pool.discard(c);
          return conn;
        },
        destroy: (conn) => conn.close(),
      },
      {
        size: cfg.pool.size,
        minIdle: 0,
        acquireTimeoutMs: cfg.pool.acquire_timeout,
        idleTimeoutMs: cfg.pool.idle_timeout,
        name: `${cfg.name}/${node}/${user}/${database}`,
      },
    );
    this.pools.set(key, { node, pool });
    return pool;
  }

  /**
   * The ParameterStatus values a client of (user, database, params) is told at
   * login, learned from the first backend login on `node` and reused while that
   * node stays primary: a login then needs no backend connection, so logins go on
   * while every pooled connection is busy (PgBouncer also replays cached values).
   */
  cachedLoginParameters(user: string, database: string, params: StartupParams): Map<string, string> | undefined {
    const hit = this.loginParams.get(loginKey(user, database, params));
    if (!hit) return undefined;
    const snap = this.snapshot();
    return hit.node === snap.primary || (snap.primary === null && snap.nodes.some((n) => n.name === hit.node && n.up)) ? hit.params : undefined;
  }

  rememberLoginParameters(node: string, user: string, database: string, params: StartupParams, values: Map<string, string>): void {
    // Bounded: one entry per (user, database, startup parameters) seen; startup parameters are
    // client-chosen, so a client cycling application_name must not grow this without end.
    if (this.loginParams.size >= 1024) this.loginParams.clear();
    this.loginParams.set(loginKey(user, database, params), { node, params: values });
  }

  /** Borrow a live connection, skipping (and discarding) any that broke while idle. */
  async acquire(
    node: string,
    user: string,
    database: string,
    params: StartupParams,
    prefer?: (c: PgBackendConn) => boolean,
  ): Promise<{ conn: PgBackendConn; pool: Pool<PgBackendConn> }> {
    const pool = this.pool(node, user, database, params);
    for (;;) {
      const conn = await pool.acquire(prefer ? { prefer } : undefined);
      if (!conn.broken) return { conn, pool };
      pool.discard(conn);
    }
  }

  registerSession(pid: number, secret: number, session: Cancellable): void {
    this.sessions.set(pid, { secret, session });
  }

  unregisterSession(pid: number): void {
    this.sessions.delete(pid);
  }

  hasSessionPid(pid: number): boolean {
    return this.sessions.has(pid);
  }

  /** A CancelRequest: only the right secret cancels, and nothing is said either way. */
  cancel(pid: number, secret: number): void {
    const s = this.sessions.get(pid);
    if (s && s.secret === secret) s.session.cancel();
  }

  status(): ClusterStatus {
    const snap = this.snapshot();
    const budget = { bytes: this.config.routing.max_replica_lag.bytes, timeMs: this.config.routing.max_replica_lag.time };
    const eligibility = explainEligibility(snap, budget);
    return {
      name: this.name,
      protocol: 'postgres',
      client_connections: this.clientConnections,
      pinned_sessions: this.pinnedSessions,
      read_retries: this.readRetries,
      primary: snap.primary,
      split_brain: snap.splitBrain,
      max_replica_lag_bytes: budget.bytes,
      max_replica_lag_seconds: budget.timeMs / 1000,
      nodes: snap.nodes.map((n) => {
        const pool = { active: 0, idle: 0, waiting: 0 };
        for (const p of this.pools.values()) {
          if (p.node !== n.name) continue;
          const st = p.pool.stats();
          pool.active += st.active;
          pool.idle += st.idle;
          pool.waiting += st.waiting;
        }
        const el = eligibility.get(n.name);
        return {
          name: n.name,
          host: n.host,
          port: n.port,
          role: n.role,
          up: n.up,
          weight: n.weight,
          lag_bytes: n.lagBytes,
          lag_seconds: n.lagSeconds,
          eligible: el?.eligible ?? false,
          ineligible_reason: el?.eligible ? undefined : el?.reason,
          drained: n.drained,
          pool,
        };
      }),
    };
  }

  /** Hot reload: new settings apply to the next statement; pools keep their connections. */
  reconfigure(config: ClusterConfig, limits: LimitsConfig): void {
    const r0 = this.config.routing;
    const r1 = config.routing;
    if (r0.write_functions.join() !== r1.write_functions.join() || r0.read_functions.join() !== r1.read_functions.join()) {
      this.classifier = new Classifier({ dialect: 'postgres', writeFunctions: r1.write_functions, readFunctions: r1.read_functions });
    }
    this.config = config;
    this.limits = limits;
    this.loginParams.clear();
    for (const [key, { node, pool }] of this.pools) {
      if (!config.nodes.some((n) => n.name === node)) {
        // A removed node drains: no new borrowers, running transactions finish.
        this.pools.delete(key);
        void pool.drain();
        continue;
      }
      pool.resize({ size: config.pool.size, acquireTimeoutMs: config.pool.acquire_timeout, idleTimeoutMs: config.pool.idle_timeout });
    }
  }

  /** Close every pool (shutdown). */
  async close(): Promise<void> {
    for (const { pool } of this.pools.values()) pool.close();
    this.pools.clear();
  }
}

/** The part of a pool's key that a client's login chooses. */
function loginKey(user: string, database: string, params: StartupParams): string {
  const paramKey = Object.keys(params)
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('\u0001');
  return `${user}\u0000${database}\u0000${paramKey}`;
}

/** A stable, short fingerprint (for logs) that never contains the text itself. */
export function fingerprint(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** Network-level failures only: a wrong password or a full server says nothing about the node's health. */
function isConnectFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT' || code === 'EPIPE' || /no answer within|timed? ?out|ECONNREFUSED/i.test(String((err as Error)?.message));
}
