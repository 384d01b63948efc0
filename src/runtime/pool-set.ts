import type { ClusterConfig } from '../config/types.js';
import type { Pool } from '../pool/pool.js';
import type { Logger } from '../observability/logger.js';

/*
 * The backend pools of one cluster and what a reload does to them, for both protocols
 * (PgClusterRuntime, MysqlClusterRuntime): which pools keep their connections, which are
 * replaced because what they log in with changed, which drain. What a pool is keyed by and
 * how it connects stay in the runtimes.
 */

/** What a pool's connections log in with, fixed when the pool is made (a reload that changes it replaces the pool). */
export interface BackendLogin {
  host: string;
  port: number;
  password: string;
  tls: ClusterConfig['backend_tls'];
  /** pool.connect_timeout: TCP connect + TLS + login. */
  connectTimeoutMs: number;
}

export function sameLogin(a: BackendLogin, b: BackendLogin): boolean {
  return (
    a.host === b.host &&
    a.port === b.port &&
    a.password === b.password &&
    a.connectTimeoutMs === b.connectTimeoutMs &&
    a.tls.mode === b.tls.mode &&
    a.tls.ca === b.tls.ca
  );
}

/** One pool and what it was made for; a runtime may keep more (its entry type E). */
export interface PoolEntry<C> {
  node: string;
  user: string;
  login: BackendLogin;
  pool: Pool<C>;
}

export class PoolSet<C, E extends PoolEntry<C> = PoolEntry<C>> {
  /** The live pools by the runtime's key. */
  readonly entries = new Map<string, E>();
  /** Pools a reload replaced: their waiters move to the successor (see wasReplaced). */
  private readonly replaced = new WeakSet<Pool<C>>();
  /** Pools of removed nodes and replaced pools until their last connection closed (counted in usage()). */
  private readonly draining = new Set<{ node: string; pool: Pool<C> }>();
  /**
   * Users a reload removed, with their last password: new logins are refused (client
   * auth reads the config), but the sessions they already have keep going, also when
   * their pools must be rebuilt for a node's new address.
   */
  private readonly removedUsers = new Map<string, string>();

  /** What a new pool of `user` on `node` logs in with under `cfg`; `fallback` when the user is unknown. */
  login(cfg: ClusterConfig, node: { host: string; port: number }, user: string, fallback = ''): BackendLogin {
    const password = cfg.users.find((u) => u.name === user)?.password ?? this.removedUsers.get(user) ?? fallback;
    return { host: node.host, port: node.port, password, tls: cfg.backend_tls, connectTimeoutMs: cfg.pool.connect_timeout };
  }

  /** True for a pool a reload replaced: a borrower that failed waiting in it tries its successor. */
  wasReplaced(pool: Pool<C>): boolean {
    return this.replaced.has(pool);
  }

  /**
   * A reload from `previous` to `config`:
   *   1. remember removed users' passwords (their open sessions keep their pools);
   *   2. a pool of a removed node drains: no new borrowers, running transactions finish;
   *   3. a pool whose login changed (password, host, port, backend_tls, pool.connect_timeout)
   *      is replaced: it leaves the set (the next borrow builds a new one), its waiters move
   *      there, its idle connections close now and the lent ones when returned;
   *   4. the others keep their connections and take the new pool sizes and timeouts.
   * `removed` sees every entry that leaves the set (for the runtime's own indexes).
   */
  reconfigure(previous: ClusterConfig, config: ClusterConfig, log: Logger, removed?: (entry: E) => void): void {
    for (const u of previous.users) if (!config.users.some((n) => n.name === u.name)) this.removedUsers.set(u.name, u.password);
    for (const u of config.users) this.removedUsers.delete(u.name);
    const rebuilt = new Set<string>();
    for (const [key, entry] of this.entries) {
      const { node, user, login, pool } = entry;
      const nodeCfg = config.nodes.find((n) => n.name === node);
      const changed = nodeCfg !== undefined && !sameLogin(login, this.login(config, nodeCfg, user, login.password));
      if (!nodeCfg || changed) {
        this.entries.delete(key);
        removed?.(entry);
        if (changed) {
          this.replaced.add(pool);
          rebuilt.add(`${node}/${user}`);
        }
        this.drain(node, pool);
        continue;
      }
      pool.resize({ size: config.pool.size, acquireTimeoutMs: config.pool.acquire_timeout, idleTimeoutMs: config.pool.idle_timeout });
    }
    if (rebuilt.size > 0) log.info({ pools: [...rebuilt] }, 'backend login settings changed: pools replaced, old connections close when idle');
  }

  /** Connections of every pool of `node`, draining ones included (status()). */
  usage(node: string): { active: number; idle: number; waiting: number } {
    const out = { active: 0, idle: 0, waiting: 0 };
    for (const p of [...this.entries.values(), ...this.draining]) {
      if (p.node !== node) continue;
      const st = p.pool.stats();
      out.active += st.active;
      out.idle += st.idle;
      out.waiting += st.waiting;
    }
    return out;
  }

  /** Closes every pool (shutdown). */
  close(): void {
    for (const { pool } of [...this.entries.values(), ...this.draining]) pool.close();
    this.draining.clear();
    this.entries.clear();
  }

  /** No new borrowers; idle connections close now, lent ones when they come back. */
  private drain(node: string, pool: Pool<C>): void {
    const entry = { node, pool };
    this.draining.add(entry);
    void pool.drain().then(() => this.draining.delete(entry));
  }
}
