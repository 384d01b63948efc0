/**
 * Pure Group Replication decisions (MySQL 8). A node in a group says what it
 * is in performance_schema.replication_group_members: one row per member it
 * can see, with MEMBER_STATE (ONLINE, RECOVERING, OFFLINE, ERROR, UNREACHABLE)
 * and MEMBER_ROLE (PRIMARY, SECONDARY). read_only/super_read_only alone are
 * not enough there: a member in ERROR or RECOVERING is read-only but must not
 * be read from, a member cut off in a minority partition still says ONLINE for
 * itself, and in multi-primary mode every ONLINE member is writable, which the
 * read_only rule would call a split brain. No I/O, no clock.
 */

export interface GroupMemberRow {
  id: string;
  host: string;
  port: number;
  state: string;
  role: string;
}

/** What one node's monitoring connection read about its group. */
export interface GroupView {
  /** The node's own @@server_uuid. */
  self: string;
  /** @@group_replication_group_name. */
  group: string;
  members: readonly GroupMemberRow[];
}

export interface GroupVerdict {
  /** False: the node is in no running group (plugin off, or it left): judge it by read_only as usual. */
  inGroup: boolean;
  /** May be routed to at all. */
  ok: boolean;
  /** The group's PRIMARY as this node sees itself. */
  writable: boolean;
  /** More than one ONLINE PRIMARY: the group runs in multi-primary mode. */
  multiPrimary: boolean;
  /** Why not ok, for /status and the logs. */
  error?: string;
  state?: string;
  role?: string;
}

/** States of members that take part in the group's consensus (UNREACHABLE ones do not, OFFLINE/ERROR have left it). */
const REACHABLE = new Set(['ONLINE', 'RECOVERING']);

/**
 * Judges one node from its own view of the group:
 *   1. no row for itself, or OFFLINE with no group name: not in a group; OFFLINE with
 *      a group name: Group Replication was stopped on it (STOP GROUP_REPLICATION, or it
 *      never started): it is super_read_only, so read_only alone would keep it a readable
 *      replica, but its data no longer follows the group: not routed to;
 *   2. not ONLINE (RECOVERING is still applying what it missed, ERROR has left): not routed to;
 *   3. fewer than a majority of the members it lists reachable: it is in a minority
 *      partition, its writes block and its data stops moving, so it is not routed to;
 *   4. otherwise writable when its role is PRIMARY.
 */
export function judgeGroupMember(view: GroupView): GroupVerdict {
  const me = view.members.find((m) => m.id === view.self);
  if (!me || (me.state.toUpperCase() === 'OFFLINE' && view.group === '')) return { inGroup: false, ok: true, writable: false, multiPrimary: false };
  const state = me.state.toUpperCase();
  const role = me.role.toUpperCase();
  const base = { inGroup: true, state, role, writable: false, multiPrimary: false };
  if (state === 'OFFLINE') return { ...base, ok: false, error: `group replication is stopped on this member (OFFLINE; group ${view.group}): its data no longer follows the group` };
  if (state !== 'ONLINE') return { ...base, ok: false, error: `group replication member state is ${state}` };
  const reachable = view.members.filter((m) => REACHABLE.has(m.state.toUpperCase())).length;
  if (reachable * 2 <= view.members.length) {
    return { ...base, ok: false, error: `group replication: no quorum (${reachable} of ${view.members.length} members reachable)` };
  }
  const primaries = view.members.filter((m) => m.role.toUpperCase() === 'PRIMARY' && m.state.toUpperCase() === 'ONLINE').length;
  return { ...base, ok: true, writable: role === 'PRIMARY', multiPrimary: primaries > 1 };
}

export interface GroupedNode {
  name: string;
  /** The group the node's last good probe said it is in, and whether it was writable there. */
  group: string | null;
  writable: boolean;
  multiPrimary: boolean;
}

/**
 * Multi-primary mode: every ONLINE member is writable, and that is one
 * consistent database, not a split brain. Writes go to one of them so that a
 * session's writes and the GTID positions it waits for stay on one node: the
 * first in config order. Returns the nodes whose writability is to be ignored
 * (they are read from like replicas). Writable nodes in different groups, or
 * outside any group, are left alone, so they still count as a split brain.
 */
export function secondaryPrimaries(nodesInConfigOrder: readonly GroupedNode[]): Set<string> {
  const demoted = new Set<string>();
  const chosen = new Map<string, string>();
  for (const n of nodesInConfigOrder) {
    if (!n.writable || !n.multiPrimary || n.group === null) continue;
    if (chosen.has(n.group)) demoted.add(n.name);
    else chosen.set(n.group, n.name);
  }
  return demoted;
}

/** Members the group lists that no configured node matches by host and port (they get no traffic; the log says so). */
export function unconfiguredMembers(view: GroupView, configured: readonly { host: string; port: number }[]): GroupMemberRow[] {
  return view.members.filter((m) => m.host !== '' && !configured.some((c) => c.port === m.port && sameHost(c.host, m.host)));
}

function sameHost(a: string, b: string): boolean {
  const norm = (h: string) => (h.toLowerCase() === 'localhost' ? '127.0.0.1' : h.toLowerCase());
  return norm(a) === norm(b);
}
