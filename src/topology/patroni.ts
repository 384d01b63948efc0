import type { NodeState, PatroniNodeState, TopologySnapshot } from '../routing/topology.js';
import type { NodeHealth } from './decide.js';

/**
 * Pure decisions for `discovery.patroni`: from Patroni's `GET /cluster` answer
 * and the nodes' own probes (pg_is_in_recovery()), which node may take writes
 * and which may not serve reads. No I/O here; src/topology/patroni-fetch.ts
 * fetches and src/topology/pg-monitor.ts applies the result.
 *
 * Rules (docs/routing.md, "Patroni discovery"):
 *   1. A node is the primary only when Patroni names it leader AND it is
 *      writable itself. A leader still in recovery means no primary yet; a
 *      writable node Patroni does not name leader gets role `unknown` (no
 *      writes, no reads): it is being demoted, or it is a split brain.
 *   2. `noloadbalance` on a member: never a read target. `nofailover` is shown only.
 *   3. Members that match no configured node are ignored (the contract's
 *      `nodes:` is the node set); they are reported so the monitor can log them.
 *   4. Patroni unreachable: roles come from the probes alone (as without
 *      discovery); the last tags seen stay in force.
 */

export interface PatroniMember {
  name: string;
  /** Patroni's role: leader, replica, sync_standby, standby_leader, ... */
  role: string;
  /** running, streaming, stopped, starting, crashed, ... */
  state: string;
  host: string | null;
  port: number | null;
  noloadbalance: boolean;
  nofailover: boolean;
}

export interface PatroniView {
  members: PatroniMember[];
  /** Maintenance mode (`patronictl pause`). */
  paused: boolean;
}

/** Roles Patroni versions use for the member that holds the leader key of a read-write cluster. */
const LEADER_ROLES = new Set(['leader', 'master', 'primary']);

/** Patroni reads tag values with its parse_bool: true, 'true', 'on', 'yes', 1 ... */
function truthy(v: unknown): boolean {
  if (v === true) return true;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return ['true', 'on', 'yes', 'y', '1'].includes(v.trim().toLowerCase());
  return false;
}

/**
 * Parses a `GET /cluster` body (already JSON-decoded). Throws a plain Error
 * naming what is wrong when the shape is not Patroni's: a bad answer counts
 * as no answer (rule 4), never as "no leader".
 */
export function parseClusterJson(body: unknown): PatroniView {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { members?: unknown }).members)) {
    throw new Error('not a Patroni /cluster answer (no "members" list)');
  }
  const members: PatroniMember[] = [];
  for (const raw of (body as { members: unknown[] }).members) {
    if (typeof raw !== 'object' || raw === null) throw new Error('a member of the /cluster answer is not an object');
    const m = raw as Record<string, unknown>;
    if (typeof m.name !== 'string' || m.name === '') throw new Error('a member of the /cluster answer has no name');
    const tags = typeof m.tags === 'object' && m.tags !== null ? (m.tags as Record<string, unknown>) : {};
    const port = typeof m.port === 'number' ? m.port : typeof m.port === 'string' && /^\d+$/.test(m.port) ? Number(m.port) : null;
    members.push({
      name: m.name,
      role: typeof m.role === 'string' ? m.role : 'unknown',
      state: typeof m.state === 'string' ? m.state : 'unknown',
      host: typeof m.host === 'string' && m.host !== '' ? m.host : null,
      port,
      noloadbalance: truthy(tags.noloadbalance),
      nofailover: truthy(tags.nofailover),
    });
  }
  return { members, paused: truthy((body as { pause?: unknown }).pause) };
}

type NodeRef = { name: string; host: string; port: number };

/**
 * Which member is which configured node: 1. same host and port (Patroni's
 * `postgresql.connect_address`), 2. else the same name. Each member maps to at most one node.
 */
export function matchMembers(view: PatroniView, nodes: readonly NodeRef[]): { byNode: Map<string, PatroniMember>; unmatched: PatroniMember[] } {
  const byNode = new Map<string, PatroniMember>();
  const used = new Set<PatroniMember>();
  for (const n of nodes) {
    const m = view.members.find((x) => !used.has(x) && x.host !== null && x.host.toLowerCase() === n.host.toLowerCase() && x.port === n.port);
    if (m) {
      byNode.set(n.name, m);
      used.add(m);
    }
  }
  for (const n of nodes) {
    if (byNode.has(n.name)) continue;
    const m = view.members.find((x) => !used.has(x) && x.name === n.name);
    if (m) {
      byNode.set(n.name, m);
      used.add(m);
    }
  }
  return { byNode, unmatched: view.members.filter((m) => !used.has(m)) };
}

export interface PatroniInput {
  /** The last view Patroni gave, or null if it never answered. */
  view: PatroniView | null;
  /** Did the latest fetch succeed? false: unreachable, roles from the probes alone (rule 4). */
  fresh: boolean;
}

export interface PatroniDecision {
  /** The probes' health with roles adjusted by rule 1 (the same map when nothing changed). */
  health: Map<string, NodeHealth>;
  /** Per configured node, what Patroni says of it (absent: no view yet). */
  nodes: Map<string, PatroniNodeState>;
  /** Patroni's leader as a configured node name; null when none or not one of ours. */
  leader: string | null;
  /** Patroni's leader member name, even when it is not one of our nodes. */
  leaderMember: string | null;
  /** Members that are no configured node (ignored). */
  unknownMembers: string[];
  /** Why there is no primary, or which writable node was refused: for logs, stable text. */
  notes: string[];
  fresh: boolean;
}

/** Rules 1-4 on one view and the current probe results. */
export function decidePatroni(input: PatroniInput, nodes: readonly NodeRef[], health: ReadonlyMap<string, NodeHealth>): PatroniDecision {
  const out: PatroniDecision = {
    health: new Map(health),
    nodes: new Map(),
    leader: null,
    leaderMember: null,
    unknownMembers: [],
    notes: [],
    fresh: input.fresh,
  };
  if (!input.view) {
    if (!input.fresh) out.notes.push('Patroni unreachable: roles from pg_is_in_recovery() alone');
    return out;
  }
  const { byNode, unmatched } = matchMembers(input.view, nodes);
  out.unknownMembers = unmatched.map((m) => m.name);
  for (const n of nodes) {
    const m = byNode.get(n.name);
    out.nodes.set(n.name, {
      member: m?.name ?? null,
      role: m?.role ?? null,
      state: m?.state ?? null,
      noloadbalance: m?.noloadbalance ?? false,
      nofailover: m?.nofailover ?? false,
    });
  }
  if (!input.fresh) {
    // Rule 4: stale tags stay, roles are the probes'.
    out.notes.push('Patroni unreachable: roles from pg_is_in_recovery() alone');
    return out;
  }
  const leaders = input.view.members.filter((m) => LEADER_ROLES.has(m.role));
  // Patroni names at most one leader; if a broken answer names several, trust none of them.
  const leaderMember = leaders.length === 1 ? leaders[0]! : null;
  if (leaders.length > 1) out.notes.push(`Patroni names ${leaders.length} leaders (${leaders.map((m) => m.name).join(', ')}): no writes`);
  out.leaderMember = leaderMember?.name ?? null;
  for (const n of nodes) {
    if (leaderMember && byNode.get(n.name) === leaderMember) out.leader = n.name;
  }
  if (leaderMember && !out.leader) out.notes.push(`Patroni's leader ${leaderMember.name} is not one of the configured nodes: no writes`);
  if (!leaderMember && leaders.length === 0) out.notes.push('Patroni names no leader: no writes until it does');
  for (const n of nodes) {
    const h = health.get(n.name);
    if (!h) continue;
    if (n.name === out.leader) {
      if (h.up && h.role === 'replica') out.notes.push(`Patroni's leader ${n.name} is still in recovery: no primary yet`);
      continue;
    }
    if (h.role === 'primary') {
      out.health.set(n.name, { ...h, role: 'unknown' });
      if (h.up) out.notes.push(`${n.name} is writable but Patroni's leader is ${out.leaderMember ?? 'nobody'}: not used`);
    }
  }
  return out;
}

/** Adds what Patroni says to a snapshot built from the decision's health. */
export function withPatroni(snapshot: TopologySnapshot, d: PatroniDecision): TopologySnapshot {
  const nodes: NodeState[] = snapshot.nodes.map((n) => {
    const p = d.nodes.get(n.name);
    return p ? { ...n, patroni: p } : n;
  });
  return { ...snapshot, nodes, patroni: { reachable: d.fresh, leader: d.leaderMember } };
}
