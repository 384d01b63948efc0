import { PgCluster as DevPgCluster, type PgClusterInfo, type PgNodeInfo } from '../../src/devcluster/pg.js';
import { stopOrKill } from './proc.js';
import { claimBaseDir, releaseBaseDir, writeServersRecord } from './reaper.js';
import { connectionInfoOf, type ClusterUser, type ConnectionInfo } from './cluster-info.js';
import { isContainersInfo, PgContainers } from './containers.js';

export type { PgClusterInfo, PgNodeInfo };

/**
 * The tests' controller for a real PostgreSQL cluster: primary pg0 and hot
 * standbys pg1..pgN streaming from replication slots. Building and the server
 * controls live in src/devcluster/pg.ts, which `switchyard demo` uses too (one
 * implementation); this class adds what only tests need and keeps the method
 * names identical to MariaCluster's.
 */
export class PgCluster {
  private constructor(private readonly dev: DevPgCluster) {}

  /** Starts a fresh cluster in its own temp dir (primary + `replicas`, default 2). */
  static async start(opts: { replicas?: number; baseDir?: string } = {}): Promise<PgCluster> {
    const baseDir = opts.baseDir ?? claimBaseDir('switchyard-pg-');
    try {
      const cluster = new PgCluster(await DevPgCluster.start({ ...opts, baseDir }));
      writeServersRecord(baseDir, cluster.pids());
      return cluster;
    } catch (e) {
      // DevPgCluster.start stopped what it had started and removed the dir.
      releaseBaseDir(baseDir);
      throw e;
    }
  }

  /** A controller for a cluster another process started (e.g. inject('pgCluster') in a worker). */
  static attach(info: PgClusterInfo): PgCluster {
    // Clusters of the containers backend (test/support/containers.ts) are driven through the Docker API.
    if (isContainersInfo(info)) return PgContainers.attach(info) as unknown as PgCluster;
    return new PgCluster(DevPgCluster.attach(info));
  }

  /** Plain JSON: safe to pass between processes. Roles change when promote() runs. */
  get info(): PgClusterInfo {
    return this.dev.info;
  }

  node(name: string): PgNodeInfo {
    return this.dev.node(name);
  }

  /** TCP settings for `node` as the superuser (default) or the app user, database `app`. */
  connectionInfo(node: string, as: ClusterUser = 'superuser'): ConnectionInfo {
    return connectionInfoOf(this.info, node, as);
  }

  /** One statement as the superuser (over the node's Unix socket); returns the rows. */
  query<R extends Record<string, unknown> = Record<string, unknown>>(node: string, sql: string, params: unknown[] = [], database = 'postgres'): Promise<R[]> {
    return this.dev.query<R>(node, sql, params, database);
  }

  pauseReplay(node: string): Promise<void> {
    return this.dev.pauseReplay(node);
  }

  resumeReplay(node: string): Promise<void> {
    return this.dev.resumeReplay(node);
  }

  /** Clean shutdown (pg_ctl stop -m fast), SIGTERM/SIGKILL if that fails. */
  stop(node: string): Promise<void> {
    return this.dev.stop(node);
  }

  start(node: string): Promise<void> {
    return this.dev.start(node);
  }

  /** SIGKILL the postmaster: a crash, as far as PostgreSQL can tell. */
  kill(node: string): Promise<void> {
    return this.dev.kill(node);
  }

  /** pg_promote() and wait until the node accepts writes; its role becomes primary. */
  promote(node: string): Promise<void> {
    return this.dev.promote(node);
  }

  /** Waits until every running replica has replayed the primary's current WAL position. */
  waitForReplication(timeoutMs?: number): Promise<void> {
    return this.dev.waitForReplication(timeoutMs);
  }

  /** WAL bytes between the primary's current position and the replica's replay position. */
  lagBytes(node: string): Promise<number> {
    return this.dev.lagBytes(node);
  }

  /** The postmaster's OS pid (from postmaster.pid), or null when it is not running. */
  pid(node: string): number | null {
    return this.dev.pid(node);
  }

  /** The OS pids of every running server of this cluster. */
  pids(): number[] {
    return this.info.nodes.map((n) => this.pid(n.name)).filter((p): p is number => p !== null);
  }

  /** Stops every node cleanly, SIGKILLs what has not stopped within a few seconds, removes the temp dir. Never throws. */
  async stopAll(): Promise<void> {
    await stopOrKill(() => this.dev.stopAll(), this.pids(), this.info.baseDir);
    releaseBaseDir(this.info.baseDir);
  }
}
