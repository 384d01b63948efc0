import { pino } from 'pino';
import { loadConfigText } from '../../src/config/load.js';
import type { ClusterConfig } from '../../src/config/types.js';
import { staticSnapshot, type NodeState, type TopologySnapshot } from '../../src/routing/topology.js';
import { TopologyHolder } from '../../src/topology/holder.js';
import { MysqlTopologyMonitor } from '../../src/topology/mysql-monitor.js';
import type { MariaClusterInfo } from '../support/cluster-info.js';

/**
 * A MysqlTopologyMonitor on a real MariaDB cluster, without a proxy: the
 * config goes through the real loader, and every published snapshot is kept
 * with the wall-clock time it was published, so tests can say when a state
 * was first seen.
 */
export interface Watched {
  monitor: MysqlTopologyMonitor;
  holder: TopologyHolder;
  config: ClusterConfig;
  /** Every snapshot published, with Date.now() at publication. */
  seen: { at: number; snap: TopologySnapshot }[];
  snap(): TopologySnapshot;
  node(name: string): NodeState;
  stop(): void;
}

export interface MonitorOptions {
  interval?: string;
  timeout?: string;
  fall?: number;
  rise?: number;
  lag?: string;
  /** The monitoring login (the cluster's first user): `app` (default) or root, which may read replica status. */
  user?: 'app' | 'superuser';
}

export function clusterYaml(info: MariaClusterInfo, o: MonitorOptions = {}): string {
  const nodes = info.nodes.map((n) => `      - { name: ${n.name}, host: ${n.host}, port: ${n.port} }`).join('\n');
  return [
    'clusters:',
    '  - name: my',
    '    protocol: mysql',
    '    listen: 127.0.0.1:1',
    '    nodes:',
    nodes,
    '    roles: auto',
    '    users:',
    `      - { name: ${info.users[o.user ?? 'app'].user}, password: ${info.users[o.user ?? 'app'].password} }`,
    '    routing:',
    `      max_replica_lag: ${o.lag ?? '{ bytes: 1000000, time: 1s }'}`,
    '    health:',
    `      interval: ${o.interval ?? '100ms'}`,
    `      timeout: ${o.timeout ?? '1s'}`,
    `      fall: ${o.fall ?? 3}`,
    `      rise: ${o.rise ?? 2}`,
    '',
  ].join('\n');
}

export function watch(info: MariaClusterInfo, o: MonitorOptions = {}): Watched {
  const loaded = loadConfigText(clusterYaml(info, o), { env: {} });
  if (!loaded.ok) throw new Error(`test config: ${JSON.stringify(loaded.problems)}`);
  const config = loaded.config.clusters[0]!;
  const primary = info.nodes[0]!.name;
  // The same placeholder app.ts publishes before the first round (version 0).
  const holder = new TopologyHolder({ ...staticSnapshot(config.name, config.nodes, primary, Date.now()), version: 0 });
  const seen: Watched['seen'] = [];
  const publish = holder.publish.bind(holder);
  holder.publish = (s) => {
    seen.push({ at: Date.now(), snap: s });
    publish(s);
  };
  const log = pino({ level: process.env.SWITCHYARD_TEST_LOG ?? 'silent' });
  const monitor = new MysqlTopologyMonitor(config, holder, log);
  monitor.start();
  return {
    monitor,
    holder,
    config,
    seen,
    snap: () => holder.current(),
    node: (name) => holder.current().nodes.find((n) => n.name === name)!,
    stop: () => monitor.stop(),
  };
}

/** Polls `cond` every 5ms; resolves with the time it took, rejects after timeoutMs. */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what = 'condition'): Promise<number> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not met within ${timeoutMs}ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - t0;
}

/** The first published snapshot at or after `since` that satisfies `ok`, with its time. */
export function firstSeen(w: Watched, since: number, ok: (s: TopologySnapshot) => boolean): { at: number; snap: TopologySnapshot } | undefined {
  return w.seen.find((e) => e.at >= since && ok(e.snap));
}
