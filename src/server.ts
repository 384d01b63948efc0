import { App } from './app.js';

/**
 * `switchyard start`: runs the App until SIGINT/SIGTERM (graceful: stop
 * accepting, close pools) and reloads the config on SIGHUP.
 */
export async function runServer(opts: { configPath: string; workers: string }): Promise<void> {
  if (opts.workers !== '1') {
    throw new Error(`--workers ${opts.workers}: multi-process mode is not available in this build; run with --workers 1`);
  }
  const app = new App({ configPath: opts.configPath });
  await app.start();
  // A bug in one session must not take every other session down with it: log it and go on.
  process.on('uncaughtException', (err) => app.log.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => app.log.error({ err }, 'unhandled rejection'));
  process.on('SIGHUP', () => {
    void app.reload().then((r) => {
      if (!r.ok) app.log.error({ problems: r.problems }, 'reload failed; the running config stays');
    });
  });
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
