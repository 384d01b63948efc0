import cluster, { type Worker } from 'node:cluster';
import client from 'prom-client';
import { createTopologyMonitor, initialSnapshot, type App, type TopologyMonitorLike } from '../app.js';
import type { ClusterConfig } from '../config/types.js';
import type { TopologySnapshot } from '../routing/topology.js';
import { TopologyHolder } from '../topology/holder.js';
import { cancelRelay } from '../runtime/pg-cluster.js';
import type { Logger } from '../observability/logger.js';
import { loadConfigFile, formatProblem } from '../config/load.js';
import { watchConfigFile } from '../config/watch.js';
import { createLogger } from '../observability/logger.js';
import type { ClusterStatus } from '../observability/metrics.js';
import { AdminServer, type StatusDocument } from './server.js';

/*
 * --workers N: the primary process owns admin HTTP, the config watch and the
 * signals; N forked workers each run an App (listeners shared by node:cluster,
 * which hands each accepted connection to one worker). The primary asks the
 * workers over IPC for status, readiness, reloads and drain/enable, and
 * /metrics is prom-client's AggregatorRegistry over all workers.
 *
 * One topology monitor per cluster (PostgreSQL and MySQL alike, the same
 * createTopologyMonitor as a single process uses) runs in the primary and
 * sends every snapshot it publishes to all workers, which route on it (their
 * own monitor is replaced by a feed); so there is one probe per node per
 * interval and all workers agree on roles, lag and drained nodes. A worker's
 * failed backend connect goes to the primary's monitor (reportFailure), as a
 * single process's does to its own.
 */

type Op = 'status' | 'ready' | 'reload' | 'setDrained';
interface Request {
  sy: 'req';
  id: number;
  op: Op;
  args: unknown[];
}
interface Response {
  sy: 'res';
  id: number;
  result: unknown;
}
/** A CancelRequest a worker got for a session it does not hold: the primary sends it to the others. */
interface CancelMessage {
  sy: 'cancel';
  cluster: string;
  pid: number;
  secret: number;
}
interface SnapshotMessage {
  sy: 'snap';
  cluster: string;
  snapshot: TopologySnapshot;
}
/** A worker could not connect to a node on the hot path: the primary's monitor counts it. */
interface FailureMessage {
  sy: 'fail';
  cluster: string;
  node: string;
  error: string;
}

/** In a worker: a monitor that only publishes what the primary sends, and reports failed connects to it. */
export function topologyFeed(): (cfg: ClusterConfig, holder: TopologyHolder) => TopologyMonitorLike | null {
  const holders = new Map<string, TopologyHolder>();
  process.on('message', (msg: SnapshotMessage) => {
    if (msg?.sy === 'snap') holders.get(msg.cluster)?.publish(msg.snapshot);
  });
  return (cfg, holder) => {
    holders.set(cfg.name, holder);
    const noop = () => undefined;
    return {
      start: noop,
      stop: () => holders.delete(cfg.name),
      update: noop,
      setDrained: noop,
      reportFailure: (node: string, error: string) => process.send?.({ sy: 'fail', cluster: cfg.name, node, error } satisfies FailureMessage),
    };
  };
}

/** In the primary: one monitor per cluster; every published snapshot goes to `send`. */
class PrimaryMonitors {
  private readonly monitors = new Map<string, { monitor: ReturnType<typeof createTopologyMonitor>; holder: TopologyHolder; unsubscribe: () => void }>();

  constructor(
    clusters: ClusterConfig[],
    log: Logger,
    send: (m: SnapshotMessage) => void,
  ) {
    for (const cfg of clusters) {
      const holder = new TopologyHolder(initialSnapshot(cfg));
      const monitor = createTopologyMonitor(cfg, holder, log.child({ cluster: cfg.name }));
      const unsubscribe = holder.onPublish((snapshot) => send({ sy: 'snap', cluster: cfg.name, snapshot }));
      this.monitors.set(cfg.name, { monitor, holder, unsubscribe });
      monitor.start();
    }
  }

  reportFailure(cluster: string, node: string, error: string): void {
    this.monitors.get(cluster)?.monitor.reportFailure(node, error);
  }

  /** The current snapshots, for a worker that has just started. */
  current(): SnapshotMessage[] {
    return [...this.monitors].map(([cluster, m]) => ({ sy: 'snap', cluster, snapshot: m.holder.current() }));
  }

  update(clusters: ClusterConfig[]): void {
    for (const c of clusters) this.monitors.get(c.name)?.monitor.update(c);
  }

  setDrained(cluster: string, node: string, drained: boolean): void {
    this.monitors.get(cluster)?.monitor.setDrained(node, drained);
  }

  stop(): void {
    for (const m of this.monitors.values()) {
      m.unsubscribe();
      m.monitor.stop();
    }
  }
}

/** In a worker: answer the primary's requests and send the registry for aggregation. */
export function serveWorker(app: App): void {
  client.AggregatorRegistry.setRegistries([app.metrics.registry]);
  // prom-client answers the primary's metric requests only once an AggregatorRegistry exists here.
  new client.AggregatorRegistry();
  cancelRelay.forward = (cluster, pid, secret) => process.send?.({ sy: 'cancel', cluster, pid, secret } satisfies CancelMessage);
  process.on('message', (msg: Request | CancelMessage) => {
    if (msg?.sy === 'cancel') return app.cancelLocal(msg.cluster, msg.pid, msg.secret);
    if (msg?.sy !== 'req') return;
    void (async () => {
      let result: unknown;
      if (msg.op === 'status') result = { ...app.status(), pid: process.pid };
      else if (msg.op === 'ready') result = app.ready();
      else if (msg.op === 'reload') result = await app.reload();
      else if (msg.op === 'setDrained') result = app.setDrained(String(msg.args[0]), String(msg.args[1]), Boolean(msg.args[2]));
      process.send?.({ sy: 'res', id: msg.id, result } satisfies Response);
    })();
  });
  process.send?.({ sy: 'up' });
}

export async function runPrimary(opts: { configPath: string; workers: number; watch: boolean }): Promise<void> {
  const loaded = await loadConfigFile(opts.configPath, process.env);
  if (!loaded.ok) throw new Error(`invalid config:\n${loaded.problems.map((p) => formatProblem(p, opts.configPath)).join('\n')}`);
  const log = createLogger({ level: loaded.config.log.level, format: loaded.config.log.format }).child({ process: 'primary' });
  const workers = new Set<Worker>();
  const pending = new Map<number, (v: unknown) => void>();
  let seq = 0;
  let stopping = false;
  // Snapshots carry bigint WAL positions: structured clone, not JSON.
  cluster.setupPrimary({ serialization: 'advanced' });
  const monitors = new PrimaryMonitors(loaded.config.clusters, log, (m) => {
    for (const w of workers) if (w.isConnected()) w.send(m);
  });

  cluster.on('message', (from, msg: Response | CancelMessage | FailureMessage) => {
    if (msg?.sy === 'fail') return monitors.reportFailure(msg.cluster, msg.node, msg.error);
    if (msg?.sy === 'cancel') {
      for (const w of workers) if (w !== from && w.isConnected()) w.send(msg);
      return;
    }
    if (msg?.sy !== 'res') return;
    pending.get(msg.id)?.(msg.result);
    pending.delete(msg.id);
  });
  const ask = <T>(w: Worker, op: Op, args: unknown[] = []): Promise<T | undefined> =>
    new Promise((resolve) => {
      const id = ++seq;
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve(undefined);
      }, 15_000);
      pending.set(id, (v) => {
        clearTimeout(timer);
        resolve(v as T);
      });
      w.send({ sy: 'req', id, op, args } satisfies Request);
    });
  const askAll = <T>(op: Op, args: unknown[] = []) => Promise.all([...workers].filter((w) => w.isConnected()).map((w) => ask<T>(w, op, args)));

  const fork = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork();
      workers.add(w);
      const onUp = (msg: { sy?: string }) => {
        if (msg?.sy !== 'up') return;
        w.off('message', onUp);
        for (const m of monitors.current()) w.send(m);
        resolve();
      };
      w.on('message', onUp);
      w.once('exit', (code, signal) => {
        workers.delete(w);
        reject(new Error(`worker ${w.process.pid} exited (${signal ?? code}) before it was ready`));
        if (stopping) return;
        log.error({ pid: w.process.pid, code, signal }, 'worker exited; starting another');
        setTimeout(() => void fork().catch((e: Error) => log.error({ err: e }, 'worker restart failed')), 1000).unref();
      });
    });

  // Reloads run one at a time (a file change and a SIGHUP often come together), in order.
  let reloading: Promise<unknown> = Promise.resolve();
  const reload = (): Promise<{ ok: boolean; problems: string[] }> => {
    const run = reloading.then(reloadNow);
    reloading = run.catch(() => undefined);
    return run;
  };
  const reloadNow = async () => {
    // The primary's monitors follow a valid file first, so the workers' reloads (which wait
    // for a snapshot with the new nodes and weights) see it. An invalid file goes to the
    // workers anyway: they log each problem and count the failure.
    const next = await loadConfigFile(opts.configPath, process.env);
    if (next.ok) monitors.update(next.config.clusters);
    const results = await askAll<{ ok: boolean; problems: string[] }>('reload');
    const ok = results.length > 0 && results.every((r) => r?.ok);
    const problems = [...new Set(results.flatMap((r) => (r ? r.problems : ['a worker did not answer'])))];
    if (ok && next.ok) admin.setToken(next.config.admin.token);
    return { ok, problems };
  };

  const aggregator = new client.AggregatorRegistry();
  const admin = new AdminServer(
    { registry: { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType } },
    {
      status: async () => mergeStatus((await askAll<StatusDocument & { pid: number }>('status')).filter((s) => s !== undefined)),
      ready: async () => {
        const r = await askAll<boolean>('ready');
        return r.length === opts.workers && r.every((x) => x === true);
      },
      reload,
      setDrained: async (c, n, d) => {
        const answers = await askAll<boolean>('setDrained', [c, n, d]);
        const ok = answers.length > 0 && answers.every((x) => x === true);
        if (ok) monitors.setDrained(c, n, d);
        return ok;
      },
    },
    loaded.config.admin.token,
  );
  await Promise.all(Array.from({ length: opts.workers }, () => fork()));
  await admin.listen(loaded.config.admin.listen);
  log.info({ workers: opts.workers, admin: loaded.config.admin.listen }, 'switchyard started');

  const reloadLogged = () =>
    void reload().then((r) => {
      if (!r.ok) log.error({ problems: r.problems }, 'reload failed; the running config stays');
    });
  const watcher = opts.watch ? watchConfigFile(opts.configPath, loaded.sha256, reloadLogged) : null;
  process.on('SIGHUP', reloadLogged);
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping workers');
    watcher?.close();
    monitors.stop();
    const exits = [...workers].map((w) => new Promise((r) => (w.isDead() ? r(null) : w.once('exit', r))));
    for (const w of workers) w.process.kill('SIGTERM');
    const force = setTimeout(() => process.exit(0), 12_000);
    force.unref();
    void Promise.all(exits)
      .then(() => admin.close())
      .then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/**
 * One /status from the workers': topology as the first worker sees it; what
 * is per process (clients, pools, counts) summed; `workers` lists each one.
 */
export function mergeStatus(docs: (StatusDocument & { pid?: number })[]): StatusDocument {
  const [first, ...rest] = docs;
  if (!first) return { clusters: [], config: { loaded_at: '', sha256: '' } };
  const clusters: ClusterStatus[] = first.clusters.map((c) => ({ ...c, nodes: c.nodes.map((n) => ({ ...n, pool: { ...n.pool } })) }));
  for (const d of rest) {
    for (const c of d.clusters) {
      const into = clusters.find((x) => x.name === c.name);
      if (!into) continue;
      into.client_connections += c.client_connections;
      for (const k of ['reads', 'writes', 'pinned_sessions', 'read_retries'] as const) into[k] = (into[k] ?? 0) + (c[k] ?? 0);
      for (const n of c.nodes) {
        const node = into.nodes.find((x) => x.name === n.name);
        if (!node) continue;
        node.queries = (node.queries ?? 0) + (n.queries ?? 0);
        node.pool.active += n.pool.active;
        node.pool.idle += n.pool.idle;
        node.pool.waiting += n.pool.waiting;
      }
    }
  }
  // Per worker: which config it runs (a reload reached it when its sha256 is the file's) and how many clients it holds.
  const workers = docs.flatMap((d) =>
    typeof d.pid === 'number' ? [{ pid: d.pid, config: d.config, client_connections: d.clusters.reduce((n, c) => n + c.client_connections, 0) }] : [],
  );
  return { clusters, config: first.config, workers };
}
