import type { ClusterConfig, Config, NodeConfig } from './types.js';

/**
 * What changed between two loaded configs, per cluster, for hot reload: the
 * reload decides from this what it can apply in place (weights, pool, routing,
 * health, users) and what needs a restart (listeners, protocol, clusters).
 * Clusters, nodes and users are matched by name.
 */
export type ClusterSection =
  | 'protocol'
  | 'listen'
  | 'listen_read_only'
  | 'tls'
  | 'backend_tls'
  | 'roles'
  | 'discovery'
  | 'pool'
  | 'routing'
  | 'health'
  | 'failover';

export type NodeField = 'host' | 'port' | 'weight';

export interface NodeChange {
  node: string;
  fields: NodeField[];
}

export interface ClusterDiff {
  cluster: string;
  nodesAdded: string[];
  nodesRemoved: string[];
  nodesChanged: NodeChange[];
  usersAdded: string[];
  usersRemoved: string[];
  /** Users whose password changed. */
  usersChanged: string[];
  /** Cluster settings that differ, in the order of the config file. */
  sections: ClusterSection[];
}

export type GlobalSection = 'admin.listen' | 'admin.token' | 'log' | 'limits';

export interface ConfigDiff {
  clustersAdded: string[];
  clustersRemoved: string[];
  /** Only clusters present in both configs that changed. */
  clusters: ClusterDiff[];
  global: GlobalSection[];
}

const SECTIONS: readonly ClusterSection[] = ['protocol', 'listen', 'listen_read_only', 'tls', 'backend_tls', 'roles', 'discovery', 'pool', 'routing', 'health', 'failover'];
const NODE_FIELDS: readonly NodeField[] = ['host', 'port', 'weight'];

export function diffConfig(old: Config, next: Config): ConfigDiff {
  const global: GlobalSection[] = [];
  if (old.admin.listen !== next.admin.listen) global.push('admin.listen');
  if (old.admin.token !== next.admin.token) global.push('admin.token');
  if (!sameValue(old.log, next.log)) global.push('log');
  if (!sameValue(old.limits, next.limits)) global.push('limits');

  const matched = matchByName(old.clusters, next.clusters, (c) => c.name);
  const clusters = matched.both.map(([a, b]) => diffCluster(a, b)).filter((d) => !isEmptyClusterDiff(d));
  return { clustersAdded: matched.added, clustersRemoved: matched.removed, clusters, global };
}

export function isEmptyDiff(d: ConfigDiff): boolean {
  return d.clustersAdded.length === 0 && d.clustersRemoved.length === 0 && d.clusters.length === 0 && d.global.length === 0;
}

/** One human-readable line per change, for the reload log. Passwords and tokens are never shown. */
export function describeDiff(d: ConfigDiff): string[] {
  const out = [...d.global.map((g) => `${g} changed`)];
  for (const name of d.clustersAdded) out.push(`cluster ${name} added`);
  for (const name of d.clustersRemoved) out.push(`cluster ${name} removed`);
  for (const c of d.clusters) {
    for (const s of c.sections) out.push(`${c.cluster}: ${s} changed`);
    for (const n of c.nodesAdded) out.push(`${c.cluster}: node ${n} added`);
    for (const n of c.nodesRemoved) out.push(`${c.cluster}: node ${n} removed`);
    for (const n of c.nodesChanged) out.push(`${c.cluster}: node ${n.node} ${n.fields.join(', ')} changed`);
    for (const u of c.usersAdded) out.push(`${c.cluster}: user ${u} added`);
    for (const u of c.usersRemoved) out.push(`${c.cluster}: user ${u} removed`);
    for (const u of c.usersChanged) out.push(`${c.cluster}: user ${u} password changed`);
  }
  return out;
}

function diffCluster(a: ClusterConfig, b: ClusterConfig): ClusterDiff {
  const nodes = matchByName(a.nodes, b.nodes, (n) => n.name);
  const users = matchByName(a.users, b.users, (u) => u.name);
  return {
    cluster: b.name,
    nodesAdded: nodes.added,
    nodesRemoved: nodes.removed,
    nodesChanged: nodes.both.map(([x, y]) => ({ node: y.name, fields: changedNodeFields(x, y) })).filter((c) => c.fields.length > 0),
    usersAdded: users.added,
    usersRemoved: users.removed,
    usersChanged: users.both.filter(([x, y]) => x.password !== y.password).map(([, y]) => y.name),
    sections: SECTIONS.filter((s) => !sameValue(a[s], b[s])),
  };
}

function isEmptyClusterDiff(d: ClusterDiff): boolean {
  const lists = [d.nodesAdded, d.nodesRemoved, d.nodesChanged, d.usersAdded, d.usersRemoved, d.usersChanged, d.sections];
  return lists.every((l) => l.length === 0);
}

function changedNodeFields(a: NodeConfig, b: NodeConfig): NodeField[] {
  return NODE_FIELDS.filter((f) => a[f] !== b[f]);
}

function matchByName<T>(old: readonly T[], next: readonly T[], nameOf: (x: T) => string) {
  const oldByName = new Map(old.map((x) => [nameOf(x), x]));
  const nextNames = new Set(next.map(nameOf));
  const both: [T, T][] = [];
  const added: string[] = [];
  for (const x of next) {
    const prev = oldByName.get(nameOf(x));
    if (prev === undefined) added.push(nameOf(x));
    else both.push([prev, x]);
  }
  const removed = old.map(nameOf).filter((n) => !nextNames.has(n));
  return { both, added, removed };
}

/** Structural equality for the plain data a Config holds (no functions, dates or cycles). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
