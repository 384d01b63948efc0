/**
 * Pure MySQL/MariaDB refinements of a snapshot built by decide.ts. decide.ts
 * orders positions as single numbers (gtid.ts maps GTID positions onto them);
 * this puts back what only the GTID positions can tell exactly: the lag in
 * transactions, the text of each node's position, and the server's own
 * Seconds_Behind_Master. No I/O, no clock.
 */
import type { NodeState, TopologySnapshot } from '../routing/topology.js';
import { formatGtidPos, gtidCovers, gtidDistance, type GtidPos, type GtidSample } from './gtid.js';

export interface GtidFacts {
  /** Per node, its applied GTID position from its last good probe (null: unknown). */
  positions: ReadonlyMap<string, GtidPos | null>;
  /** Per replica, Seconds_Behind_Master from its last good probe (null: replication stopped or not readable). */
  secondsBehind: ReadonlyMap<string, number | null>;
  /** The primary's position history, oldest first (the same samples decide.ts saw). */
  history: readonly GtidSample[];
}

/**
 * 1. lagBytes (where decide.ts measured one) becomes the exact number of
 *    transactions the replica has not applied, per domain, against the
 *    primary's position (with no primary: the last one seen, as decide.ts does).
 * 2. lagSeconds stays decide.ts's (from the history). Only when the replica is
 *    older than the whole history, which therefore cannot say how old, is it
 *    raised to Seconds_Behind_Master, the server's own (whole-second) figure.
 * 3. replayGtid and secondsBehindSource are added for /status and for exact
 *    GTID checks by the frontend.
 */
export function refineWithGtid(snap: TopologySnapshot, facts: GtidFacts): TopologySnapshot {
  const newest = facts.history[facts.history.length - 1];
  const reference = snap.primary ? (facts.positions.get(snap.primary) ?? null) : snap.splitBrain ? null : (newest?.gtid ?? null);
  const oldest = facts.history[0];
  const nodes: NodeState[] = snap.nodes.map((n) => {
    const pos = facts.positions.get(n.name) ?? null;
    let { lagBytes, lagSeconds } = n;
    if (lagBytes !== null && pos !== null && reference !== null) lagBytes = Number(gtidDistance(reference, pos));
    const sbm = n.role === 'replica' ? (facts.secondsBehind.get(n.name) ?? null) : null;
    if (lagSeconds !== null && pos !== null && oldest && !gtidCovers(pos, oldest.gtid) && sbm !== null && sbm > lagSeconds) lagSeconds = sbm;
    return { ...n, lagBytes, lagSeconds, replayGtid: pos === null ? null : formatGtidPos(pos), secondsBehindSource: sbm };
  });
  return { ...snap, nodes };
}
