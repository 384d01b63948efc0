import { dirname } from 'node:path';
import { MariaCluster as DevMariaCluster, mariaLagBytes, type MariaClusterInfo as DevMariaClusterInfo, type MariaNodeInfo } from '../../src/devcluster/mariadb.js';
import { findBinary } from '../../src/devcluster/proc.js';
import { stopOrKill } from './proc.js';
import { claimBaseDir, releaseBaseDir, writeServersRecord } from './reaper.js';
import { connectionInfoOf, type ClusterUser, type ConnectionInfo } from './cluster-info.js';
import { isContainersInfo, MariaContainers } from './containers.js';

export type { MariaNodeInfo };

/** The dev cluster's description plus the directory of the server binaries (as PgClusterInfo has). */
export interface MariaClusterInfo extends DevMariaClusterInfo {
  binDir: string;
}

const SERVER_DIRS = ['/usr/sbin', '/usr/bin', '/usr/local/bin'];

/**
 * The tests' controller for a real MariaDB cluster: primary my0 and read-only
 * GTID replicas my1..myN. Building and the server controls live in
 * src/devcluster/mariadb.ts (shared with `switchyard demo`); this class adds
 * what only tests need and keeps the method names identical to PgCluster's.
 */
export class MariaCluster {
  private constructor(
    private readonly dev: DevMariaCluster,
    readonly info: MariaClusterInfo,
  ) {}

  /** Starts a fresh cluster in its own temp dir (primary + `replicas`, default 2). */
  static async start(opts: { replicas?: number; baseDir?: string } = {}): Promise<MariaCluster> {
    const binDir = dirname(findBinary('mariadbd', SERVER_DIRS));
    const baseDir = opts.baseDir ?? claimBaseDir('switchyard-maria-');
    try {
      const dev = await DevMariaCluster.start({ ...opts, baseDir });
      // Same node objects: a role changed by promote() shows in both.
      const cluster = new MariaCluster(dev, { ...dev.info, binDir });
      writeServersRecord(baseDir, cluster.pids());
      return cluster;
    } catch (e) {
      // DevMariaCluster.start stopped what it had started and removed the dir.
      releaseBaseDir(baseDir);
      throw e;
    }
  }

  /** A controller for a cluster another process started (e.g. inject('mariaCluster') in a worker). */
  static attach(info: MariaClusterInfo): MariaCluster {
    // Clusters of the containers backend (test/support/containers.ts) are driven through the Docker API.
    if (isContainersInfo(info)) return MariaContainers.attach(info) as unknown as MariaCluster;
    return new MariaCluster(DevMariaCluster.attach(info), info);
  }

  node(name: string): MariaNodeInfo {
    return this.dev.node(name);
  }

  /** TCP settings for `node` as root (default) or the app user, database `app`. */
  connectionInfo(node: string, as: ClusterUser = 'superuser'): ConnectionInfo {
    return connectionInfoOf(this.info, node, as);
  }

  /** SQL as root over the node's Unix socket (several statements allowed); returns the rows. */
  query<R = Record<string, unknown>>(node: string, sql: string, params: unknown[] = []): Promise<R[]> {
    return this.dev.query<R>(node, sql, params);
  }

  /** STOP SLAVE SQL_THREAD: events keep arriving in the relay log but are not applied. */
  pauseReplay(node: string): Promise<void> {
    return this.dev.pauseReplay(node);
  }

  resumeReplay(node: string): Promise<void> {
    return this.dev.resumeReplay(node);
  }

  /** SIGTERM (a clean shutdown for mariadbd), SIGKILL after 30s. */
  stop(node: string): Promise<void> {
    return this.dev.stop(node);
  }

  start(node: string): Promise<void> {
    return this.dev.start(node);
  }

  kill(node: string): Promise<void> {
    return this.dev.kill(node);
  }

  /** STOP SLAVE; RESET SLAVE ALL; read_only=OFF; its role becomes primary. */
  promote(node: string): Promise<void> {
    return this.dev.promote(node);
  }

  /** Waits until every running replica has executed the primary's @@gtid_binlog_pos. */
  waitForReplication(timeoutMs?: number): Promise<void> {
    return this.dev.waitForReplication(timeoutMs);
  }

  /** Transactions (domain 0 GTID sequence numbers) the replica has not yet executed. */
  lagTransactions(node: string): Promise<number> {
    return this.dev.lagTransactions(node);
  }

  /** Bytes of the primary's binlog the replica has not executed yet (0 for a primary); see mariaLagBytes. */
  lagBytes(node: string): Promise<number> {
    return mariaLagBytes(this, node);
  }

  /** mariadbd's OS pid (from its pid-file), or null when it is not running. */
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
