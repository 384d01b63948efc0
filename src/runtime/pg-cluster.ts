import { createHash } from 'node:crypto';
import type { ClusterConfig, LimitsConfig } from '../config/types.js';
import { connectPgBackend } from '../backend/pg/connect.js';
import { PgBackendConn } from '../backend/pg/conn.js';
import { Pool } from '../pool/pool.js';
import { PoolSet, type PoolEntry } from './pool-set.js';
import { HungConnections } from './hung-cut.js';
import { Classifier } from '../sql/index.js';
import { Router, explainEligibility } from '../routing/router.js';
import type { TopologySnapshot } from '../routing/topology.js';
import type { Logger } from '../observability/logger.js';
import type { ClusterStatus, Metrics, QueryCounters } from '../observability/metrics.js';

/** Where a worker sends a CancelRequest for a session it does not hold (set by src/admin/workers.ts). */
export const cancelRelay: { forward: ((cluster: string, pid: number, secret: number) => void) | null } = { forward: null };
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
  /** The backend pools by node and login key; what a reload does to them (see PoolSet). */
  private readonly pools = new PoolSet<PgBackendConn, PoolEntry<PgBackendConn> & { loginKey: string }>();
  /** The same pools by login key, then node (see pool()). */
  private readonly poolIndex = new Map<string, Map<string, Pool<PgBackendConn>>>();
  private readonly loginKeys = new WeakMap<StartupParams, { user: string; database: string; key: string }>();
  private readonly sessions = new Map<number, { secret: number; session: Cancellable }>();
  /** Every open server connection, by node, and the cut of those hanging on a down node. */
  private readonly hung: HungConnections<PgBackendConn>;
  private readonly unsubscribe: () => void;
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
    this.hung = new HungConnections<PgBackendConn>((c) => c.owner !== null && c.awaitingReady, () => this.config.health.timeout, log);
    this.unsubscribe = topology.onPublish((snap) => this.hung.onTopology(snap));
  }

  /** Connections cut because their node went down while they waited for it in silence. */
  get hungConnectionsCut(): number {
    return this.hung.cut;
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
    // Every statement looks its pool up: by the session's params object and node, through two
    // maps, so the lookup builds no string (a joined key cost a concatenation, a flatten and a
    // hash per transaction).
    const lk = this.loginKeyOf(user, database, params);
    const indexed = this.poolIndex.get(lk)?.get(node);
    if (indexed) return indexed;
    const key = `${node}\u0000${lk}`;
    const found = this.pools.entries.get(key);
    if (found) return found.pool;
    const nodeCfg = this.config.nodes.find((n) => n.name === node);
    if (!nodeCfg) throw new Error(`unknown node ${node}`);
    const cfg = this.config;
    const login = this.pools.login(cfg, nodeCfg, user);
    let pool!: Pool<PgBackendConn>;
    pool = new Pool<PgBackendConn>(
      {
        create: async () => {
          const backend = await connectPgBackend({
            node,
            host: login.host,
            port: login.port,
            user,
            password: login.password,
            database,
            params,
            tls: login.tls,
            connectTimeoutMs: login.connectTimeoutMs,
          }).catch((err: unknown) => {
            // A failed connect on the hot path counts at once (issue 6): the monitor marks the node down.
            if (isConnectFailure(err)) this.reportFailure(node, err);
            throw err;
          });
          const conn = new PgBackendConn(node, login.host, login.port, backend.socket, backend);
          conn.onIdleClose = (c) => pool.discard(c);
          this.hung.add(conn);
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
    this.pools.entries.set(key, { node, loginKey: lk, user, login, pool });
    let byNode = this.poolIndex.get(lk);
    if (!byNode) this.poolIndex.set(lk, (byNode = new Map()));
    byNode.set(node, pool);
    return pool;
  }

  /** loginKey(user, database, params), computed once per params object (one per session). */
  private loginKeyOf(user: string, database: string, params: StartupParams): string {
    const hit = this.loginKeys.get(params);
    if (hit && hit.user === user && hit.database === database) return hit.key;
    const key = loginKey(user, database, params);
    this.loginKeys.set(params, { user, database, key });
    return key;
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
    for (;;) {
      const pool = this.pool(node, user, database, params);
      let conn: PgBackendConn;
      try {
        conn = await pool.acquire(prefer ? { prefer } : undefined);
      } catch (err) {
        // A reload replaced the pool while we waited (or connected): wait in its successor.
        if (this.pools.wasReplaced(pool)) continue;
        throw err;
      }
      if (!conn.broken) return { conn, pool };
      pool.discard(conn);
    }
  }

  /** acquire's synchronous case: an idle live connection now, or undefined. */
  tryAcquire(node: string, user: string, database: string, params: StartupParams, prefer?: (c: PgBackendConn) => boolean): { conn: PgBackendConn; pool: Pool<PgBackendConn> } | undefined {
    const pool = this.pool(node, user, database, params);
    for (;;) {
      const conn = pool.tryAcquire(prefer);
      if (conn === undefined) return undefined;
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

  /**
   * A CancelRequest: only the right secret cancels, and nothing is said either way. With
   * --workers, node:cluster hands the cancel's connection to any worker: one that does not
   * hold the session passes it on (cancelRelay), and the others try it locally.
   */
  cancel(pid: number, secret: number): void {
    if (!this.cancelLocal(pid, secret)) cancelRelay.forward?.(this.name, pid, secret);
  }

  /** Cancels a session of this process; false when it has no session with that pid. */
  cancelLocal(pid: number, secret: number): boolean {
    const s = this.sessions.get(pid);
    if (!s) return false;
    if (s.secret === secret) s.session.cancel();
    return true;
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
      ...(snap.patroni ? { patroni: snap.patroni } : {}),
      max_replica_lag_bytes: budget.bytes,
      max_replica_lag_seconds: budget.timeMs / 1000,
      nodes: snap.nodes.map((n) => {
        const pool = this.pools.usage(n.name);
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
          ...(n.patroni ? { patroni: n.patroni } : {}),
          pool,
        };
      }),
    };
  }

  /**
   * Hot reload: new settings apply to the next statement. Pools keep their connections
   * unless what they log in with changed: a user's password, a node's host or port,
   * backend_tls or pool.connect_timeout. Such a pool is replaced: it leaves the index (the
   * next borrow builds a new one with the new settings), its waiters move to the new one,
   * its idle connections close and the lent ones close when returned. A removed node's
   * pools drain. A removed user's pools stay for the sessions it has; client auth reads
   * the config, so it logs in no more.
   */
  reconfigure(config: ClusterConfig, limits: LimitsConfig): void {
    const r0 = this.config.routing;
    const r1 = config.routing;
    if (r0.write_functions.join() !== r1.write_functions.join() || r0.read_functions.join() !== r1.read_functions.join()) {
      this.classifier = new Classifier({ dialect: 'postgres', writeFunctions: r1.write_functions, readFunctions: r1.read_functions });
    }
    const previous = this.config;
    this.config = config;
    this.limits = limits;
    this.loginParams.clear();
    this.pools.reconfigure(previous, config, this.log, (entry) => this.poolIndex.get(entry.loginKey)?.delete(entry.node));
  }

  /** Close every pool (shutdown). */
  async close(): Promise<void> {
    this.unsubscribe();
    this.pools.close();
    this.poolIndex.clear();
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

/**
 * Network-level failures, and a server that refuses logins because it is
 * shutting down, starting up or crashed (SQLSTATE 57P01-57P03): a wrong
 * password or a full server says nothing about the node's health. connect.ts
 * wraps socket errors into SwitchyardError, so the errno is only in the message.
 */
function isConnectFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  const sqlState = ((err as { cause?: { code?: unknown } } | null)?.cause as { code?: unknown } | undefined)?.code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'EHOSTUNREACH' ||
    code === 'ETIMEDOUT' ||
    code === 'EPIPE' ||
    sqlState === '57P01' ||
    sqlState === '57P02' ||
    sqlState === '57P03' ||
    /no answer within|timed? ?out|ECONNREFUSED|ECONNRESET|EPIPE|EHOSTUNREACH|closed the connection during login/i.test(String((err as Error)?.message))
  );
}
