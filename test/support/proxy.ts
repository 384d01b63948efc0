import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { App } from '../../src/app.js';
import { freePort } from '../../src/devcluster/proc.js';

export interface ClusterNodeInfo {
  name: string;
  host: string;
  port: number;
}

/** A free TCP port on 127.0.0.1, outside the ephemeral range (see src/devcluster/proc.ts). */
export const freeTcpPort = freePort;

export interface ProxyOptions {
  protocol?: 'postgres' | 'mysql';
  nodes: ClusterNodeInfo[];
  user: { user: string; password: string };
  /** Extra YAML lines under the cluster (indented by the caller with 4 spaces). */
  clusterYaml?: string;
  /** false: return once started, without waiting for a primary and every node up (default true). */
  waitForTopology?: boolean;
  /** Extra YAML at the top level (limits:, admin token, ...). */
  topYaml?: string;
  weights?: Record<string, number>;
  readOnlyListener?: boolean;
  /** How clients log in to the proxy (users[].auth). */
  userAuth?: 'scram-sha-256' | 'md5';
  /** health.interval (default 100ms). */
  healthInterval?: string;
  /** More users after the first (the first is the one the topology monitor logs in with). */
  moreUsers?: { user: string; password: string }[];
}

export interface RunningProxy {
  app: App;
  port: number;
  roPort: number | null;
  adminPort: number;
  configPath: string;
  url(database?: string): string;
  stop(): Promise<void>;
}

/**
 * Writes a config for the given nodes and runs switchyard in this process,
 * waiting until its first topology snapshot has a primary.
 */
export async function startProxy(opts: ProxyOptions): Promise<RunningProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-proxy-'));
  const configPath = join(dir, 'switchyard.yaml');
  const port = await freeTcpPort();
  const roPort = opts.readOnlyListener ? await freeTcpPort() : null;
  const adminPort = await freeTcpPort();
  const nodes = opts.nodes
    .map((n) => `      - { name: ${n.name}, host: ${n.host}, port: ${n.port}, weight: ${opts.weights?.[n.name] ?? 1} }`)
    .join('\n');
  const yaml = `admin:
  listen: 127.0.0.1:${adminPort}
  token: test-token
log:
  level: warn
${opts.topYaml ?? ''}
clusters:
  - name: main
    protocol: ${opts.protocol ?? 'postgres'}
    listen: 127.0.0.1:${port}
${roPort ? `    listen_read_only: 127.0.0.1:${roPort}\n` : ''}    nodes:
${nodes}
    users:
      - { name: ${opts.user.user}, password: "${opts.user.password}"${opts.userAuth ? `, auth: ${opts.userAuth}` : ''} }${(opts.moreUsers ?? []).map((u) => `\n      - { name: ${u.user}, password: "${u.password}" }`).join('')}
    health:
      interval: ${opts.healthInterval ?? '100ms'}
      timeout: 1s
${opts.clusterYaml ?? ''}
`;
  writeFileSync(configPath, yaml);
  const app = new App({ configPath, env: {}, logger: pino({ level: process.env.SWITCHYARD_TEST_LOG ?? 'warn' }) });
  await app.start();
  // Wait for the first probe round: a primary and every node up.
  const deadline = Date.now() + 15_000;
  for (; opts.waitForTopology !== false; ) {
    const st = app.status().clusters[0]!;
    if (st.primary && st.nodes.every((n) => n.up)) break;
    if (Date.now() > deadline) throw new Error(`proxy topology not ready: ${JSON.stringify(st)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    app,
    port,
    roPort,
    adminPort,
    configPath,
    url: (database = 'app') => `postgresql://${opts.user.user}:${opts.user.password}@127.0.0.1:${port}/${database}`,
    stop: async () => {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
