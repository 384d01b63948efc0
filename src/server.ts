import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { App } from './app.js';
import { runPrimary, serveWorker, topologyFeed } from './admin/workers.js';

export interface ServerOptions {
  configPath: string;
  /** A number, or `auto` (one per core). */
  workers: string;
  /** Reload when the config file changes (default true). */
  watch?: boolean;
}

export function parseWorkers(value: string): number {
  if (value === 'auto') return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1024) throw new Error(`--workers ${value}: want a whole number from 1 to 1024, or auto`);
  return n;
}

/**
 * `switchyard start`. With one worker the App runs in this process. With more,
 * this process becomes the primary (admin HTTP, config watch, SIGHUP) and forks
 * the workers, which share the listeners through node:cluster (see admin/workers.ts).
 */
export async function runServer(opts: ServerOptions): Promise<void> {
  if (cluster.isWorker) return runWorker(opts);
  const n = parseWorkers(opts.workers);
  if (n > 1) return runPrimary({ configPath: opts.configPath, workers: n, watch: opts.watch !== false });

  const app = new App({ configPath: opts.configPath, watch: opts.watch !== false });
  await app.start();
  installProcessHandlers(app, () => {
    void app.reload().then((r) => {
      if (!r.ok) app.log.error({ problems: r.problems }, 'reload failed; the running config stays');
    });
  });
}

/** A worker: the App without admin HTTP, file watch or topology monitors; the primary drives them over IPC. */
async function runWorker(opts: ServerOptions): Promise<void> {
  const app = new App({ configPath: opts.configPath, watch: false, admin: false, topologyFeed: topologyFeed() });
  await app.start();
  serveWorker(app);
  // SIGHUP sent to the whole process group: the primary coordinates the reload, so ignore it here.
  installProcessHandlers(app, () => undefined);
}

function installProcessHandlers(app: App, onHup: () => void): void {
  // A bug in one session must not take every other session down with it: log it and go on.
  process.on('uncaughtException', (err) => app.log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => app.log.error({ err }, 'unhandled rejection'));
  process.on('SIGHUP', onHup);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(0), 10_000);
    force.unref();
    void app.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
