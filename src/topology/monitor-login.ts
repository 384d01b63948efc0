import type { ClusterConfig } from '../config/types.js';

/**
 * Whether a reload changed what the monitoring connection to `node` logs in with
 * (its host or port, the cluster's first user or its password, backend_tls, or
 * health.timeout, the connect bound): then that connection is re-opened.
 */
export function monitorLoginChanged(old: ClusterConfig, next: ClusterConfig, node: string): boolean {
  const a = old.nodes.find((n) => n.name === node);
  const b = next.nodes.find((n) => n.name === node);
  if (!a || !b) return true;
  const ua = old.users[0];
  const ub = next.users[0];
  return (
    a.host !== b.host ||
    a.port !== b.port ||
    ua?.name !== ub?.name ||
    ua?.password !== ub?.password ||
    old.health.timeout !== next.health.timeout ||
    JSON.stringify(old.backend_tls) !== JSON.stringify(next.backend_tls)
  );
}
