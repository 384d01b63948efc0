import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { ClusterConfig, Config } from './config/types.js';
import { loadConfigFile, formatProblem } from './config/load.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics, type ClusterStatus } from './observability/metrics.js';
import { AdminServer } from './admin/server.js';
import { listen, type BoundListener } from './frontend/listen.js';
import { handlePgConnection } from './frontend/pg/startup.js';
import { PgClusterRuntime } from './runtime/pg-cluster.js';
import { TopologyHolder } from './topology/holder.js';
import { PgTopologyMonitor } from './topology/pg-monitor.js';
import type { TopologySnapshot } from './routing/topology.js';

interface RunningCluster {
  runtime: PgClusterRuntime;
  monitor: PgTopologyMonitor;
  listeners: BoundListener[];
}

export interface AppOptions {
  configPath: string;
  env?: Record<string, string | undefined>;
  /** Replaces the logger built from config (tests). */
  logger?: Logger;
}

/**
 * The composition root: config -> logger, metrics, per-cluster topology
 * monitor + runtime + listeners, admin HTTP. `start()` resolves when every
 * listener is bound.
 */
export class App {
  config!: Config;
  log!: Logger;
  metrics!: Metrics;
  admin!: AdminServer;
  private clusters = new Map<string, RunningCluster>();
  private configSha = '';
  private loadedAt = new Date();
  private clientCount = 0;

  constructor(private readonly opts: AppOptions) {}

  async start(): Promise<void> {
    const loaded = await loadConfigFile(this.opts.configPath, this.opts.env ?? process.env);
    if (!loaded.ok) {
      throw new Error(`invalid config:\n${loaded.problems.map((p) => formatProblem(p, this.opts.configPath)).join('\n')}`);
    }
    this.config = loaded.config;
    this.configSha = loaded.sha256;
    this.log = this.opts.logger ?? createLogger({ level: this.config.log.level, format: this.config.log.format });
    this.metrics = new Metrics({ clusters: () => this.clusterStatuses() });
    for (const c of this.config.clusters) {
      if (c.protocol !== 'postgres') {
        throw new Error(`cluster ${c.name}: protocol "${c.protocol}" is not served by this build yet (PostgreSQL only)`);
      }
    }
    for (const c of this.config.clusters) this.clusters.set(c.name, await this.startCluster(c));
    this.admin = new AdminServer(
      this.metrics,
      {
        status: () => this.status(),
        ready: () => this.ready(),
        reload: () => this.reload(),
        setDrained: (cluster, node, drained) => this.setDrained(cluster, node, drained),
      },
      this.config.admin.token,
    );
    await this.admin.listen(this.config.admin.listen);
    this.log.info({ clusters: [...this.clusters.keys()], admin: this.config.admin.listen }, 'switchyard started');
  }

  private async startCluster(cfg: ClusterConfig): Promise<RunningCluster> {
    const holder = new TopologyHolder(initialSnapshot(cfg));
    const log = this.log.child({ cluster: cfg.name });
    const monitor = new PgTopologyMonitor(cfg, holder, log);
    const runtime = new PgClusterRuntime(cfg, this.config.limits, holder, this.metrics, log);
    monitor.start();
    const tlsContext = cfg.tls && cfg.tls.mode !== 'disable' ? tls.createSecureContext({ cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) }) : null;
    const listeners: BoundListener[] = [];
    const ctx = (listener: 'rw' | 'ro') => ({
      runtime,
      listener,
      tlsContext,
      log,
      admit: () => {
        if (this.clientCount >= this.config.limits.max_client_connections) return false;
        this.clientCount++;
        return true;
      },
      release: () => {
        this.clientCount--;
      },
    });
    try {
      const rw = ctx('rw');
      listeners.push(await listen(cfg.listen, (s) => handlePgConnection(s, rw)));
      if (cfg.listen_read_only) {
        const ro = ctx('ro');
        listeners.push(await listen(cfg.listen_read_only, (s) => handlePgConnection(s, ro)));
      }
    } catch (e) {
      monitor.stop();
      for (const l of listeners) await l.close();
      throw new Error(`cluster ${cfg.name}: cannot listen: ${(e as Error).message}`);
    }
    return { runtime, monitor, listeners };
  }

  /** The port a cluster's listener actually bound (tests listen on port 0). */
  boundPort(cluster: string, which: 'rw' | 'ro' = 'rw'): number {
    const c = this.clusters.get(cluster);
    const l = c?.listeners[which === 'rw' ? 0 : 1];
    if (!l) throw new Error(`no ${which} listener for cluster ${cluster}`);
    return l.port;
  }

  clusterStatuses(): ClusterStatus[] {
    return [...this.clusters.values()].map((c) => c.runtime.status());
  }

  status() {
    return { clusters: this.clusterStatuses(), config: { loaded_at: this.loadedAt.toISOString(), sha256: this.configSha } };
  }

  ready(): boolean {
    for (const c of this.clusters.values()) {
      if (c.listeners.length === 0) return false;
      if (!c.runtime.snapshot().nodes.some((n) => n.up)) return false;
    }
    return this.clusters.size > 0;
  }

  setDrained(cluster: string, node: string, drained: boolean): boolean {
    const c = this.clusters.get(cluster);
    if (!c || !c.runtime.config.nodes.some((n) => n.name === node)) return false;
    c.monitor.setDrained(node, drained);
    this.log.info({ cluster, node, drained }, drained ? 'node drained' : 'node enabled');
    return true;
  }

  /**
   * Reload: 1. validate the file, 2. build the new per-cluster settings,
   * 3. swap them in, 4. leave open sessions alone. An invalid file changes nothing.
   * Clusters added or removed and changed listen addresses need a restart (for now).
   */
  async reload(): Promise<{ ok: boolean; problems: string[] }> {
    const loaded = await loadConfigFile(this.opts.configPath, this.opts.env ?? process.env);
    if (!loaded.ok) {
      const problems = loaded.problems.map((p) => formatProblem(p, this.opts.configPath));
      for (const p of problems) this.log.error({ problem: p }, 'config reload rejected');
      this.metrics.reloads.inc({ result: 'failure' });
      return { ok: false, problems };
    }
    const next = loaded.config;
    const problems: string[] = [];
    for (const c of next.clusters) {
      const running = this.clusters.get(c.name);
      if (!running) problems.push(`clusters: adding cluster ${c.name} needs a restart`);
      else if (running.runtime.config.listen !== c.listen || running.runtime.config.listen_read_only !== c.listen_read_only) {
        problems.push(`clusters.${c.name}.listen: changing listen addresses needs a restart`);
      }
    }
    if (problems.length > 0) {
      this.metrics.reloads.inc({ result: 'failure' });
      return { ok: false, problems };
    }
    for (const c of next.clusters) {
      const running = this.clusters.get(c.name)!;
      running.runtime.reconfigure(c, next.limits);
      running.monitor.update(c);
    }
    this.config = next;
    this.configSha = loaded.sha256;
    this.loadedAt = new Date();
    this.admin.setToken(next.admin.token);
    this.metrics.reloads.inc({ result: 'success' });
    this.log.info({ sha256: loaded.sha256 }, 'config reloaded');
    return { ok: true, problems: [] };
  }

  /** Stop accepting, close client connections, stop monitors, close pools. */
  async stop(): Promise<void> {
    for (const c of this.clusters.values()) {
      for (const l of c.listeners) {
        await l.close();
        l.destroyConnections();
      }
      c.monitor.stop();
      await c.runtime.close();
    }
    this.clusters.clear();
    await this.admin?.close();
  }
}

/** Before the first probe: static roles as configured, every node down until probed. */
function initialSnapshot(cfg: ClusterConfig): TopologySnapshot {
  const primary = cfg.roles === 'auto' ? null : cfg.roles.primary;
  return {
    cluster: cfg.name,
    version: 0,
    takenAt: Date.now(),
    primary: null,
    splitBrain: false,
    nodes: cfg.nodes.map((n) => ({
      name: n.name,
      host: n.host,
      port: n.port,
      weight: n.weight,
      role: primary === null ? 'unknown' : n.name === primary ? 'primary' : 'replica',
      up: false,
      drained: false,
      lagBytes: null,
      lagSeconds: null,
      replayPosition: null,
    })),
  };
}
