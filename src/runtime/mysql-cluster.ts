import type { ClusterConfig, LimitsConfig } from '../config/types.js';
import { connectMysql } from '../backend/mysql/connect.js';
import { MysqlBackendConn } from '../backend/mysql/conn.js';
import { Pool } from '../pool/pool.js';
import { PoolSet } from './pool-set.js';
import { Classifier } from '../sql/index.js';
import { Router, explainEligibility } from '../routing/router.js';
import { HungConnections } from './hung-cut.js';
import type { TopologySnapshot } from '../routing/topology.js';
import type { Logger } from '../observability/logger.js';
import type { ClusterStatus, Metrics, QueryCounters } from '../observability/metrics.js';
import type { TopologyHolder } from '../topology/holder.js';
import { ErrorCodes, SwitchyardError, isSwitchyardError } from '../errors.js';

/**
 * What selects a backend pool besides node and user: the client capability
 * flags that change the shape of the server's answers, and the collation id
 * (the session's character set). Clients of one driver share one key.
 */
export interface MysqlPoolKey {
  user: string;
  /** Backend capability flags to log in with. */
  capabilities: number;
  charset: number;
}

/** A MySQL client session as the runtime knows it (for KILL). */
export interface MysqlKillable {
  /** KILL QUERY: stop what the session runs now, if anything. */
  killQuery(): Promise<void>;
  /** KILL [CONNECTION]: stop it and close the client's connection. */
  killConnection(): Promise<void>;
}

/** What the first backend login told about the servers (the client handshake repeats it). */
export interface MysqlServerInfo {
  serverVersion: string;
  capabilities: number;
}

/**
 * Everything a MySQL cluster's client sessions share: config, topology
 * snapshot, the mysql-dialect classifier, the router, backend pools and the
 * registry of sessions by proxy connection id. The PostgreSQL counterpart is
 * PgClusterRuntime; both use the same Pool, Router, classifier and snapshot.
 */
export class MysqlClusterRuntime {
  classifier: Classifier;
  readonly router = new Router();
  readonly counters: QueryCounters;
  /** The backend pools by node, user, capabilities and charset; what a reload does to them (see PoolSet). */
  private readonly pools = new PoolSet<MysqlBackendConn>();
  private readonly sessions = new Map<number, MysqlKillable>();
  private nextConnectionId = 1;
  private serverInfoCache: MysqlServerInfo | null = null;
  clientConnections = 0;
  pinnedSessions = 0;
  readRetries = 0;
  /** Every open server connection, by node, and the cut of those hanging on a down node. */
  private readonly hung: HungConnections<MysqlBackendConn>;
  private readonly unsubscribe: () => void;
  /** Set by the composition root: tells the topology monitor that connecting to a node failed. */
  failureSink: ((node: string, error: string) => void) | null = null;

  constructor(
    public config: ClusterConfig,
    public limits: LimitsConfig,
    readonly topology: TopologyHolder,
    readonly metrics: Metrics,
    readonly log: Logger,
  ) {
    this.classifier = makeClassifier(config);
    this.counters = metrics.queryCounters(config.name);
    this.hung = new HungConnections<MysqlBackendConn>((c) => c.busy, () => this.config.health.timeout, log);
    this.unsubscribe = topology.onPublish((snap) => this.hung.onTopology(snap));
  }

  /** Connections cut because their node went down while a command waited there in silence. */
  get hungConnectionsCut(): number {
    return this.hung.cut;
  }

  get name(): string {
    return this.config.name;
  }

  get preparedCacheSize(): number {
    return this.config.pool.prepared_statements;
  }

  snapshot(): TopologySnapshot {
    return this.topology.current();
  }

  password(user: string): string | undefined {
    return this.config.users.find((u) => u.name === user)?.password;
  }

  reportFailure(node: string, err: unknown): void {
    this.failureSink?.(node, err instanceof Error ? err.message : String(err));
  }

  pool(node: string, key: MysqlPoolKey): Pool<MysqlBackendConn> {
    const id = `${node}\u0000${key.user}\u0000${key.capabilities}\u0000${key.charset}`;
    const found = this.pools.entries.get(id);
    if (found) return found.pool;
    const nodeCfg = this.config.nodes.find((n) => n.name === node);
    if (!nodeCfg) throw new SwitchyardError(ErrorCodes.INTERNAL, `unknown node ${node}`);
    const cfg = this.config;
    const login = this.pools.login(cfg, nodeCfg, key.user);
    let pool!: Pool<MysqlBackendConn>;
    pool = new Pool<MysqlBackendConn>(
      {
        create: async () => {
          const backend = await connectMysql({
            host: login.host,
            port: login.port,
            user: key.user,
            password: login.password,
            database: null,
            capabilities: key.capabilities,
            charset: key.charset,
            timeoutMs: login.connectTimeoutMs,
            tls: login.tls,
            node,
            readInPlace: true,
          }).catch((err: unknown) => {
            if (isConnectFailure(err)) this.reportFailure(node, err);
            throw isSwitchyardError(err) ? err : new SwitchyardError(ErrorCodes.BACKEND_CONNECT_FAILED, `node ${node}: ${(err as Error).message}`, { cause: err });
          });
          const conn = new MysqlBackendConn(node, login.host, login.port, backend);
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
        name: `${cfg.name}/${node}/${key.user}`,
      },
    );
    this.pools.entries.set(id, { node, user: key.user, login, pool });
    return pool;
  }

  /** Borrow a live connection, skipping (and discarding) any that broke while idle. */
  async acquire(node: string, key: MysqlPoolKey, prefer?: (c: MysqlBackendConn) => boolean): Promise<{ conn: MysqlBackendConn; pool: Pool<MysqlBackendConn> }> {
    for (;;) {
      const pool = this.pool(node, key);
      let conn: MysqlBackendConn;
      try {
        conn = await pool.acquire(prefer ? { prefer } : undefined);
      } catch (err) {
        // A reload replaced the pool while we waited (or connected): wait in its successor.
        if (this.pools.wasReplaced(pool)) continue;
        throw err;
      }
      if (!conn.broken && !conn.busy) return { conn, pool };
      pool.discard(conn);
    }
  }

  /**
   * Server version and capabilities for the client handshake, from one login
   * to a node that is up (the primary first), remembered after the first success.
   */
  async serverInfo(): Promise<MysqlServerInfo> {
    if (this.serverInfoCache) return this.serverInfoCache;
    const snap = this.snapshot();
    const nodes = [...this.config.nodes].sort((a, b) => Number(b.name === snap.primary) - Number(a.name === snap.primary));
    const user = this.config.users[0]!;
    let last: unknown = null;
    for (const n of nodes) {
      try {
        const login = await connectMysql({
          host: n.host, port: n.port, user: user.name, password: user.password, database: null,
          timeoutMs: this.config.pool.connect_timeout, tls: this.config.backend_tls, node: n.name,
        });
        login.socket.destroy();
        this.serverInfoCache = { serverVersion: login.serverVersion, capabilities: login.serverCapabilities };
        return this.serverInfoCache;
      } catch (e) {
        last = e;
      }
    }
    throw new SwitchyardError(ErrorCodes.BACKEND_CONNECT_FAILED, `no node of cluster ${this.name} is reachable: ${(last as Error)?.message ?? 'no nodes'}`);
  }

  /** A fresh proxy connection id (what the client sees as its connection id and uses in KILL). */
  register(session: MysqlKillable): number {
    for (;;) {
      const id = this.nextConnectionId;
      this.nextConnectionId = this.nextConnectionId >= 0xffffffff ? 1 : this.nextConnectionId + 1;
      if (!this.sessions.has(id)) {
        this.sessions.set(id, session);
        return id;
      }
    }
  }

  /** The logged-in session takes over the id registered at handshake time. */
  attach(id: number, session: MysqlKillable): void {
    this.sessions.set(id, session);
  }

  unregister(id: number): void {
    this.sessions.delete(id);
  }

  session(id: number): MysqlKillable | undefined {
    return this.sessions.get(id);
  }

  status(): ClusterStatus {
    const snap = this.snapshot();
    const budget = { bytes: this.config.routing.max_replica_lag.bytes, timeMs: this.config.routing.max_replica_lag.time };
    const eligibility = explainEligibility(snap, budget);
    return {
      name: this.name,
      protocol: 'mysql',
      client_connections: this.clientConnections,
      pinned_sessions: this.pinnedSessions,
      read_retries: this.readRetries,
      primary: snap.primary,
      split_brain: snap.splitBrain,
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
          ...(n.groupReplication ? { group_replication: { member_state: n.groupReplication.state, member_role: n.groupReplication.role, multi_primary: n.groupReplication.multiPrimary } } : {}),
          pool,
        };
      }),
    };
  }

  /**
   * Hot reload: new settings apply to the next statement. A pool whose login changed (the
   * user's password, the node's host or port, pool.connect_timeout, backend_tls) is replaced: the next
   * borrow builds a new one, its waiters move there, its connections close once idle.
   * A removed node's pools drain; a removed user's stay for its open sessions.
   */
  reconfigure(config: ClusterConfig, limits: LimitsConfig): void {
    const r0 = this.config.routing;
    const r1 = config.routing;
    if (r0.write_functions.join() !== r1.write_functions.join() || r0.read_functions.join() !== r1.read_functions.join()) {
      this.classifier = makeClassifier(config);
    }
    const addressChanged = config.nodes.some((n) => this.config.nodes.some((o) => o.name === n.name && (o.host !== n.host || o.port !== n.port)));
    if (addressChanged) this.serverInfoCache = null;
    const previous = this.config;
    this.config = config;
    this.limits = limits;
    this.pools.reconfigure(previous, config, this.log);
  }

  async close(): Promise<void> {
    this.unsubscribe();
    this.pools.close();
  }
}

function makeClassifier(config: ClusterConfig): Classifier {
  return new Classifier({ dialect: 'mysql', writeFunctions: config.routing.write_functions, readFunctions: config.routing.read_functions });
}

/** Network-level failures only: a wrong password says nothing about the node's health. */
function isConnectFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT' || code === 'EPIPE' || /timed out|ECONNREFUSED/i.test(String((err as Error)?.message));
}
