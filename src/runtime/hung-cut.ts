import type net from 'node:net';
import type { Logger } from '../observability/logger.js';
import type { TopologySnapshot } from '../routing/topology.js';

/** What the cut needs of a server connection of either protocol. */
export interface WatchedConn {
  readonly node: string;
  readonly socket: net.Socket;
  /** performance.now() of the last byte written or received. */
  lastIoAt: number;
}

/**
 * Every open server connection of a runtime, by node, and the cut of those that
 * hang on a node the monitor has declared down. A SIGSTOPped or frozen host keeps
 * its TCP connections open, and a statement in flight there would wait as long as
 * it stays frozen. On every snapshot (one per health.interval) the connections of
 * down nodes that are waiting for an answer (`waiting`) and have been silent for at
 * least health.timeout are destroyed: the session then handles a lost connection as
 * always (an unanswered autocommit read runs again on another node, anything else
 * gets its error and the session goes on). Idle connections and ones still receiving
 * data are left alone; a node that is slow but answering loses nothing. A node that
 * left the config is not in the snapshot and not down: its running statements finish.
 */
export class HungConnections<C extends WatchedConn> {
  private readonly conns = new Map<string, Set<C>>();
  /** Connections cut because their node went down while they waited for it in silence. */
  cut = 0;

  constructor(
    private readonly waiting: (conn: C) => boolean,
    private readonly silentForMs: () => number,
    private readonly log: Logger,
  ) {}

  /** Tracks `conn` until its socket closes. */
  add(conn: C): void {
    let open = this.conns.get(conn.node);
    if (!open) this.conns.set(conn.node, (open = new Set()));
    open.add(conn);
    conn.socket.once('close', () => open.delete(conn));
  }

  onTopology(snap: TopologySnapshot): void {
    for (const n of snap.nodes) if (!n.up) this.cutNode(n.name);
  }

  private cutNode(node: string): void {
    const set = this.conns.get(node);
    if (!set) return;
    const now = performance.now();
    const silentFor = this.silentForMs();
    let cut = 0;
    for (const conn of set) {
      if (!this.waiting(conn) || now - conn.lastIoAt < silentFor) continue;
      cut++;
      conn.socket.destroy(new Error(`node ${node} was marked down while this connection waited ${Math.round(now - conn.lastIoAt)}ms for its answer`));
    }
    if (cut > 0) {
      this.cut += cut;
      this.log.warn({ node, connections: cut }, 'cut connections waiting on a node that went down');
    }
  }
}
