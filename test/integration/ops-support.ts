import { mkdtempSync, renameSync, rmSync, symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { App } from '../../src/app.js';
import { freeTcpPort } from '../support/proxy.js';

/** What the ops tests vary in the config file. */
export interface OpsConfig {
  adminPort: number;
  port: number;
  token?: string;
  weights?: Record<string, number>;
  lagBytes?: string;
  lagTime?: string;
  /** Only these nodes (default: all). */
  only?: string[];
  poolSize?: number;
  healthInterval?: string;
  /** Replaces a node's weight with this raw YAML text (to write an invalid file). */
  rawWeight?: string;
}

export interface NodeInfo {
  name: string;
  host: string;
  port: number;
}

export function renderConfig(nodes: NodeInfo[], user: { user: string; password: string }, c: OpsConfig): string {
  const list = nodes
    .filter((n) => !c.only || c.only.includes(n.name))
    .map((n) => `      - { name: ${n.name}, host: ${n.host}, port: ${n.port}, weight: ${c.rawWeight && n.name === 'pg2' ? c.rawWeight : (c.weights?.[n.name] ?? 1)} }`)
    .join('\n');
  return `admin:
  listen: 127.0.0.1:${c.adminPort}
  token: "${c.token ?? 'ops-token'}"
log:
  level: info
clusters:
  - name: main
    protocol: postgres
    listen: 127.0.0.1:${c.port}
    nodes:
${list}
    users:
      - { name: ${user.user}, password: "${user.password}" }
    pool:
      size: ${c.poolSize ?? 20}
    routing:
      max_replica_lag: { bytes: ${c.lagBytes ?? '16MB'}, time: ${c.lagTime ?? '1s'} }
    health:
      interval: ${c.healthInterval ?? '100ms'}
      timeout: 1s
`;
}

export interface OpsProxy {
  app: App;
  dir: string;
  configPath: string;
  adminPort: number;
  port: number;
  /** Every log line the app wrote, parsed. */
  logs: Record<string, unknown>[];
  admin(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  stop(): Promise<void>;
}

/**
 * Runs an App in this process on a config file in a fresh temp dir (or on
 * `configPath` when given, e.g. a ConfigMap-style symlink), capturing its logs,
 * and waits until every node is up.
 */
export async function startOpsProxy(
  nodes: NodeInfo[],
  user: { user: string; password: string },
  cfg: Partial<OpsConfig> = {},
  opts: { configPath?: string; dir?: string; watch?: boolean } = {},
): Promise<OpsProxy> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'switchyard-ops-'));
  const full: OpsConfig = { adminPort: await freeTcpPort(), port: await freeTcpPort(), ...cfg };
  const configPath = opts.configPath ?? join(dir, 'switchyard.yaml');
  if (!opts.configPath) writeFileSync(configPath, renderConfig(nodes, user, full));
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const app = new App({ configPath, env: {}, logger: pino({ level: 'info' }, sink), watch: opts.watch });
  await app.start();
  const deadline = Date.now() + 15_000;
  for (;;) {
    const st = app.status().clusters[0]!;
    if (st.primary && st.nodes.every((n) => n.up)) break;
    if (Date.now() > deadline) throw new Error(`topology not ready: ${JSON.stringify(st)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    app,
    dir,
    configPath,
    adminPort: full.adminPort,
    port: full.port,
    logs,
    admin: (path, init = {}) => {
      const headers = new Headers(init.headers);
      const token = init.token === undefined ? 'ops-token' : init.token;
      if (token !== null) headers.set('authorization', `Bearer ${token}`);
      return fetch(`http://127.0.0.1:${full.adminPort}${path}`, { ...init, headers });
    },
    stop: async () => {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A Kubernetes ConfigMap volume: `dir/..<stamp>/switchyard.yaml`, `dir/..data`
 * -> `..<stamp>`, `dir/switchyard.yaml` -> `..data/switchyard.yaml`. `swap`
 * writes a new stamped dir and renames a fresh `..data` link over the old one,
 * as the kubelet's AtomicWriter does.
 */
export function configMapDir(dir: string, text: string): { path: string; swap(text: string): void } {
  let n = 0;
  const stamp = (t: string) => {
    const d = `..2026_11_25_07_00_00.${n++}`;
    mkdirSync(join(dir, d));
    writeFileSync(join(dir, d, 'switchyard.yaml'), t);
    return d;
  };
  symlinkSync(stamp(text), join(dir, '..data'));
  symlinkSync('..data/switchyard.yaml', join(dir, 'switchyard.yaml'));
  return {
    path: join(dir, 'switchyard.yaml'),
    swap(t: string) {
      const d = stamp(t);
      symlinkSync(d, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    },
  };
}

export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The value of one sample line in Prometheus text (exact label set as written by prom-client). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (.+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const kv of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[kv[1]!] = kv[2]!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}
