import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { ClusterConfig, Config } from './config/types.js';
import { loadConfigFile, formatProblem } from './config/load.js';
import { fileSha256, watchConfigFile, type ConfigWatcher } from './config/watch.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics, type ClusterStatus } from './observability/metrics.js';
import { AdminServer } from './admin/server.js';
import { listen, type BoundListener } from './frontend/listen.js';
import { handlePgConnection } from './frontend/pg/startup.js';
import { PgClusterRuntime } from './runtime/pg-cluster.js';
import { TopologyHolder } from './topology/holder.js';
import { PgTopologyMonitor } from './topology/pg-monitor.js';
import { handleMysqlConnection } from './frontend/mysql/startup.js';
import { MysqlClusterRuntime } from './runtime/mysql-cluster.js';
import { MysqlTopologyMonitor } from './topology/mysql-monitor.js';
import type { TopologySnapshot } from './routing/topology.js';

interface RunningCluster {
  runtime: PgClusterRuntime | MysqlClusterRuntime;
  monitor: TopologyMonitorLike;
  /** [0] the rw listener, [1] the read-only one (when configured). */
  listeners: (BoundListener | undefined)[];
  /** Binds a listener of this cluster on an address (hot reload of `listen`). */
  bind(which: 'rw' | 'ro', address: string): Promise<BoundListener>;
}

/** What the App needs of a cluster's topology monitor (its own, or a feed from the --workers primary). */
export interface TopologyMonitorLike {
  start(): void;
  stop(): void;
  update(config: ClusterConfig): void;
  setDrained(node: string, drained: boolean): void;
  /** Connecting to `node` failed on the hot path (the runtime's failureSink). */
  reportFailure?(node: string, error: string): void;
}

export interface ReloadResult {
  ok: boolean;
  problems: string[];
}

export interface AppOptions {
  configPath: string;
  env?: Record<string, string | undefined>;
  /** Replaces the logger built from config (tests). */
  logger?: Logger;
  /** Reload when the file's content changes (default true; off in cluster workers, where the primary watches). */
  watch?: boolean;
  /** Serve admin HTTP (default true; off in cluster workers, where the primary serves it). */
  admin?: boolean;
  /** A monitor that publishes into `holder` from elsewhere (--workers); null: run our own. */
  topologyFeed?: (cfg: ClusterConfig, holder: TopologyHolder) => TopologyMonitorLike | null;
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
  private watcher: ConfigWatcher | null = null;
  /** Listeners replaced by a reload: no longer accepting, but their clients are closed at stop(). */
  private retired: BoundListener[] = [];
  /** Reloads run one at a time, in the order asked for. */
  private reloading: Promise<unknown> = Promise.resolve();
  /** Successful reloads that changed the config since start (per process: shown in /status). */
  private generation = 0;
  /** sha256 of the last file rejected for its content, until another content is seen (see reloadNow). */
  private rejectedSha: string | null = null;

  constructor(private readonly opts: AppOptions) {}

  async start(): Promise<void> {
    const loaded = await loadConfigFile(this.opts.configPath, this.opts.env ?? process.env);
    if (!loaded.ok) {
      throw new Error(`invalid config:\n${loaded.problems.map((p) => formatProblem(p, this.opts.configPath)).join('\n')}`);
    }
    this.config = loaded.config;
    this.configSha = loaded.sha256;
    this.log = this.opts.logger ?? createLogger({ level: this.config.log.level, format: this.config.log.format });
    this.metrics = new Metrics({ clusters: () => this.clusterStatuses(), maxClientConnections: () => this.config.limits.max_client_connections });
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
    if (this.opts.admin !== false) await this.admin.listen(this.config.admin.listen);
    if (this.opts.watch !== false) {
      this.watcher = watchConfigFile(this.opts.configPath, this.configSha, () => {
        this.log.info('config file changed');
        void this.reload();
      });
    }
    this.log.info({ clusters: [...this.clusters.keys()], admin: this.config.admin.listen }, 'switchyard started');
  }

  private async startCluster(cfg: ClusterConfig): Promise<RunningCluster> {
    const holder = new TopologyHolder(initialSnapshot(cfg));
    const log = this.log.child({ cluster: cfg.name });
    const mysql = cfg.protocol === 'mysql';
    const monitor = this.opts.topologyFeed?.(cfg, holder) ?? createTopologyMonitor(cfg, holder, log);
    const runtime = mysql
      ? new MysqlClusterRuntime(cfg, this.config.limits, holder, this.metrics, log)
      : new PgClusterRuntime(cfg, this.config.limits, holder, this.metrics, log);
    runtime.failureSink = (node, error) => monitor.reportFailure?.(node, error);
    monitor.start();
    const tlsContext = cfg.tls && cfg.tls.mode !== 'disable' ? tls.createSecureContext({ cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) }) : null;
    const listeners: (BoundListener | undefined)[] = [];
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
    const bind = (which: 'rw' | 'ro', address: string) => {
      const c = ctx(which);
      if (runtime instanceof MysqlClusterRuntime) {
        const mc = { ...c, runtime };
        return listen(address, (s) => handleMysqlConnection(s, mc));
      }
      const pc = { ...c, runtime };
      return listen(address, (s) => handlePgConnection(s, pc));
    };
    try {
      listeners.push(await bind('rw', cfg.listen));
      if (cfg.listen_read_only) listeners.push(await bind('ro', cfg.listen_read_only));
    } catch (e) {
      monitor.stop();
      for (const l of listeners) await l?.close();
      throw new Error(`cluster ${cfg.name}: cannot listen: ${(e as Error).message}`);
    }
    return { runtime, monitor, listeners, bind };
  }

  /** The port a cluster's listener actually bound (tests listen on port 0). */
  boundPort(cluster: string, which: 'rw' | 'ro' = 'rw'): number {
    const c = this.clusters.get(cluster);
    const l = c?.listeners[which === 'rw' ? 0 : 1];
    if (!l) throw new Error(`no ${which} listener for cluster ${cluster}`);
    return l.port;
  }

  clusterStatuses(): ClusterStatus[] {
    return [...this.clusters.values()].map((c) => {
      const st = c.runtime.status();
      const counters = c.runtime.counters;
      return { ...st, reads: counters.reads, writes: counters.writes, nodes: st.nodes.map((n) => ({ ...n, queries: counters.nodeQueries(n.name) })) };
    });
  }

  status() {
    return { clusters: this.clusterStatuses(), config: { loaded_at: this.loadedAt.toISOString(), sha256: this.configSha, generation: this.generation } };
  }

  ready(): boolean {
    for (const c of this.clusters.values()) {
      if (!c.listeners[0]) return false;
      if (!c.runtime.snapshot().nodes.some((n) => n.up)) return false;
    }
    return this.clusters.size > 0;
  }

  /** A CancelRequest relayed from another worker: tried on this process's sessions only. */
  cancelLocal(cluster: string, pid: number, secret: number): void {
    const runtime = this.clusters.get(cluster)?.runtime;
    if (runtime && 'cancelLocal' in runtime) (runtime as { cancelLocal(pid: number, secret: number): boolean }).cancelLocal(pid, secret);
  }

  setDrained(cluster: string, node: string, drained: boolean): boolean {
    const c = this.clusters.get(cluster);
    if (!c || !c.runtime.config.nodes.some((n) => n.name === node)) return false;
    c.monitor.setDrained(node, drained);
    this.log.info({ cluster, node, drained }, drained ? 'node drained' : 'node enabled');
    return true;
  }

  /**
   * Reload: 1. validate the file, 2. build: bind any changed listen address,
   * 3. swap the per-cluster settings in, 4. drain: the old listener stops
   * accepting (its clients stay), removed nodes' pools drain. Open client
   * connections are never closed. An invalid file, or a new address that
   * cannot be bound, changes nothing. Adding or removing a cluster needs a restart.
   */
  reload(): Promise<ReloadResult> {
    const run = this.reloading.then(() => this.reloadNow());
    this.reloading = run.catch(() => undefined);
    return run;
  }

  /**
   * A rejected reload. `contentSha`: the rejection follows from the file's content alone
   * (invalid, or adds/removes a cluster); asking again with the same content answers the
   * same problems without counting or logging them again.
   */
  private fail(problems: string[], contentSha: string | null = null): ReloadResult {
    if (contentSha !== null && contentSha === this.rejectedSha) return { ok: false, problems };
    this.rejectedSha = contentSha;
    for (const p of problems) this.log.error({ problem: p }, 'config reload rejected; the running config stays');
    this.metrics.reloads.inc({ result: 'failure' });
    return { ok: false, problems };
  }

  /**
   * One change of the file is one reload, however many triggers it gets: a file change
   * usually comes with its watch event and a SIGHUP or POST /reload from whoever made it
   * (and with --workers the primary asks every worker). So a reload that finds the content
   * already running changes nothing and counts nothing (it answers ok), and the same
   * rejected content is counted once (fail()). A failed bind is not about the content:
   * trying again with the same file is a new attempt, counted.
   */
  private async reloadNow(): Promise<ReloadResult> {
    const loaded = await loadConfigFile(this.opts.configPath, this.opts.env ?? process.env);
    if (!loaded.ok) {
      const problems = loaded.problems.map((p) => formatProblem(p, this.opts.configPath));
      return this.fail(problems, (await fileSha256(this.opts.configPath)) ?? 'unreadable');
    }
    if (loaded.sha256 === this.configSha) {
      this.rejectedSha = null;
      this.log.info({ sha256: loaded.sha256 }, 'config file unchanged: nothing to reload');
      return { ok: true, problems: [] };
    }
    const next = loaded.config;
    const problems: string[] = [];
    for (const c of next.clusters) if (!this.clusters.has(c.name)) problems.push(`clusters: adding cluster ${c.name} needs a restart`);
    for (const name of this.clusters.keys()) if (!next.clusters.some((c) => c.name === name)) problems.push(`clusters: removing cluster ${name} needs a restart`);
    if (next.admin.listen !== this.config.admin.listen) this.log.warn('admin.listen changed: takes effect at the next restart');
    if (problems.length > 0) return this.fail(problems, loaded.sha256);

    // Build: bind every changed address before anything is swapped, so a failed bind changes nothing.
    const opened: { running: RunningCluster; index: 0 | 1; listener: BoundListener | undefined }[] = [];
    try {
      for (const c of next.clusters) {
        const running = this.clusters.get(c.name)!;
        const old = running.runtime.config;
        if (old.listen !== c.listen) opened.push({ running, index: 0, listener: await running.bind('rw', c.listen) });
        if (old.listen_read_only !== c.listen_read_only) {
          opened.push({ running, index: 1, listener: c.listen_read_only ? await running.bind('ro', c.listen_read_only) : undefined });
        }
      }
    } catch (e) {
      for (const o of opened) await o.listener?.close();
      return this.fail([`cannot listen on a new address: ${(e as Error).message}`]);
    }

    // Swap, then drain what is gone.
    for (const c of next.clusters) {
      const running = this.clusters.get(c.name)!;
      running.runtime.reconfigure(c, next.limits);
      running.monitor.update(c);
    }
    // The monitor publishes the new node list and weights with its next round: answer once
    // routing uses them, so "200" means applied (bounded: a node that never answers is no reason to hang).
    await Promise.all(
      next.clusters.map((c) =>
        this.clusters.get(c.name)!.runtime.topology.waitFor((snap) => snapshotMatches(snap, c), c.health.interval + c.health.timeout + 500),
      ),
    );
    for (const o of opened) {
      const old = o.running.listeners[o.index];
      o.running.listeners[o.index] = o.listener;
      // Stop accepting on the old address; the clients it accepted keep their connections.
      await old?.close();
      if (old) this.retired.push(old);
      this.log.info({ cluster: o.running.runtime.name, from: old?.address ?? null, to: o.listener?.address ?? null }, 'listen address changed');
    }
    this.config = next;
    this.configSha = loaded.sha256;
    this.loadedAt = new Date();
    this.generation++;
    this.rejectedSha = null;
    this.admin.setToken(next.admin.token);
    this.metrics.reloads.inc({ result: 'success' });
    this.log.info({ sha256: loaded.sha256 }, 'config reloaded');
    return { ok: true, problems: [] };
  }

  /** Stop accepting, close client connections, stop monitors, close pools. */
  async stop(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
    for (const l of this.retired.splice(0)) l.destroyConnections();
    for (const c of this.clusters.values()) {
      for (const l of c.listeners) {
        if (!l) continue;
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

/** The topology monitor of a cluster's protocol (in the App, or in the --workers primary for all workers). */
export function createTopologyMonitor(cfg: ClusterConfig, holder: TopologyHolder, log: Logger): PgTopologyMonitor | MysqlTopologyMonitor {
  return cfg.protocol === 'mysql' ? new MysqlTopologyMonitor(cfg, holder, log) : new PgTopologyMonitor(cfg, holder, log);
}

/** Whether a snapshot carries exactly the configured nodes with their weights. */
function snapshotMatches(snap: TopologySnapshot, cfg: ClusterConfig): boolean {
  return snap.nodes.length === cfg.nodes.length && cfg.nodes.every((n) => snap.nodes.some((s) => s.name === n.name && s.weight === n.weight));
}

/** Before the first probe: static roles as configured, every node down until probed. */
export function initialSnapshot(cfg: ClusterConfig): TopologySnapshot {
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
