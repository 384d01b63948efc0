import type { MysqlBackendConn } from '../../backend/mysql/conn.js';
import type { TopologySnapshot } from '../../routing/topology.js';
import type { MysqlClusterRuntime } from '../../runtime/mysql-cluster.js';

/**
 * Commands in flight on one runtime's backend connections, looked at after every
 * topology publish (one per health.interval), as PgClusterRuntime.cutHungConnections
 * does for PostgreSQL: a node declared down may be hung rather than dead (SIGSTOP, a
 * frozen host), its TCP connections stay open, and a command waiting there would wait
 * as long as it stays frozen. One silent for at least health.timeout (no byte read
 * since it was sent, or since the last look) is cut; its session then handles a lost
 * connection as always (an unanswered autocommit read runs again elsewhere, anything
 * else gets its error and the session goes on). A node that is slow but answering
 * loses nothing. Kept here, not in the runtime, because only sessions know what runs.
 */
export class HungWatch {
  readonly running = new Map<MysqlBackendConn, { since: number; bytesRead: number }>();
  cut = 0;

  constructor(private readonly runtime: MysqlClusterRuntime) {
    runtime.topology.onPublish((snap) => this.check(snap));
  }

  private check(snap: TopologySnapshot): void {
    if (this.running.size === 0) return;
    let down: Set<string> | null = null;
    for (const n of snap.nodes) if (!n.up) (down ??= new Set()).add(n.name);
    if (!down) return;
    const now = performance.now();
    const silentFor = this.runtime.config.health.timeout;
    let cut = 0;
    for (const [conn, w] of this.running) {
      if (!down.has(conn.node)) continue;
      const read = conn.socket.bytesRead;
      if (read !== w.bytesRead) {
        w.bytesRead = read;
        w.since = now;
        continue;
      }
      if (now - w.since < silentFor) continue;
      cut++;
      this.running.delete(conn);
      conn.socket.destroy(new Error(`node ${conn.node} was marked down while this connection waited ${Math.round(now - w.since)}ms for its answer`));
    }
    if (cut > 0) {
      this.cut += cut;
      this.runtime.log.warn({ connections: cut }, 'cut connections waiting on a node that went down');
    }
  }
}

const hungWatches = new WeakMap<MysqlClusterRuntime, HungWatch>();

export function hungWatch(runtime: MysqlClusterRuntime): HungWatch {
  let w = hungWatches.get(runtime);
  if (!w) hungWatches.set(runtime, (w = new HungWatch(runtime)));
  return w;
}

/** Connections cut because their node went down while a command waited there in silence (for tests and status). */
export function mysqlHungConnectionsCut(runtime: MysqlClusterRuntime): number {
  return hungWatches.get(runtime)?.cut ?? 0;
}

