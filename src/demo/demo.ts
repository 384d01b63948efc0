import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from '../app.js';
import { PgCluster } from '../devcluster/pg.js';
import { MariaCluster } from '../devcluster/mariadb.js';
import { findBinary } from '../devcluster/proc.js';

export interface DemoOptions {
  port: number;
  /** Proxy port for the MariaDB cluster (when MariaDB is installed). */
  mysqlPort: number;
  adminPort: number;
  /** Called with the printed lines (default: stdout). */
  print?: (line: string) => void;
  /** Resolves to stop the demo (default: SIGINT/SIGTERM). */
  until?: Promise<void>;
}

/**
 * `switchyard demo`:
 *   1. start a local PostgreSQL primary + 2 streaming replicas from the
 *      machine's server binaries (and a MariaDB primary + 2 GTID replicas when
 *      MariaDB is installed);
 *   2. write a config for them and run the proxy in front;
 *   3. print how to connect; 4. on Ctrl-C stop the proxy and every server and
 *      remove the temp dirs.
 */
export async function runDemo(opts: DemoOptions): Promise<void> {
  const print = opts.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-demo-'));
  print('starting PostgreSQL: a primary and 2 streaming replicas ...');
  let pg: PgCluster | null = null;
  let maria: MariaCluster | null = null;
  let app: App | null = null;
  const stopAll = async () => {
    await app?.stop().catch(() => undefined);
    await Promise.all([pg?.stopAll(), maria?.stopAll()].map((p) => p?.catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    pg = await PgCluster.start({ replicas: 2 });
    if (hasMariaDb()) {
      print('starting MariaDB: a primary and 2 GTID replicas ...');
      maria = await MariaCluster.start({ replicas: 2 });
    }
    const configPath = join(dir, 'switchyard.yaml');
    writeFileSync(configPath, demoConfig(pg, maria, opts));
    app = new App({ configPath, env: {} });
    await app.start();
    // The first health round (250ms) tells which node is primary: print only once every
    // node is up and a primary is known, so a first statement right after the banner routes.
    await untilTopologyKnown(app, 15_000);
    print('');
    print('switchyard is running in front of a local PostgreSQL primary (pg0) and 2 replicas (pg1, pg2):');
    print(`  connect:  psql "postgresql://app:app@127.0.0.1:${opts.port}/app"`);
    if (maria) {
      print(`and of a local MariaDB primary (${maria.info.nodes[0]!.name}) and 2 replicas:`);
      print(`  connect:  mariadb -h 127.0.0.1 -P ${opts.mysqlPort} -u app -papp app`);
    }
    print(`  stats:    http://127.0.0.1:${opts.adminPort}/   (metrics at /metrics, JSON at /status)`);
    print(`  config:   ${configPath}`);
    print(`  data:     ${pg.info.baseDir}${maria ? ` ${maria.info.baseDir}` : ''}`);
    print('Writes go to the primaries, reads to the replicas. Press Ctrl-C to stop everything.');
    await (opts.until ?? signalled());
    print('stopping ...');
  } finally {
    await stopAll();
  }
  print('stopped; nothing is left running.');
}

async function untilTopologyKnown(app: App, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const clusters = app.status().clusters;
    if (clusters.length > 0 && clusters.every((c) => c.primary !== null && c.nodes.every((n) => n.up))) return;
    if (Date.now() > deadline) throw new Error(`the demo cluster's topology was not known within ${timeoutMs}ms: ${JSON.stringify(clusters.map((c) => ({ primary: c.primary, up: c.nodes.map((n) => n.up) })))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function hasMariaDb(): boolean {
  try {
    findBinary('mariadbd', ['/usr/sbin', '/usr/bin']);
    findBinary('mariadb-install-db', ['/usr/bin']);
    return true;
  } catch {
    return false;
  }
}

function signalled(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

function demoConfig(pg: PgCluster, maria: MariaCluster | null, opts: DemoOptions): string {
  const nodes = (list: { name: string; host?: string; port: number }[]) => list.map((n) => `      - { name: ${n.name}, host: 127.0.0.1, port: ${n.port} }`).join('\n');
  const mysql = maria
    ? `
  - name: demo-mysql
    protocol: mysql
    listen: 127.0.0.1:${opts.mysqlPort}
    nodes:
${nodes(maria.info.nodes)}
    roles: auto
    users:
      - { name: app, password: app }
    routing:
      # MariaDB lag is measured in transactions (GTID distance) and time.
      max_replica_lag: { bytes: 1000, time: 1s }
`
    : '';
  return `# written by switchyard demo
admin:
  listen: 127.0.0.1:${opts.adminPort}
log:
  level: info
  format: pretty
clusters:
  - name: demo
    protocol: postgres
    listen: 127.0.0.1:${opts.port}
    nodes:
${nodes(pg.info.nodes)}
    roles: auto
    users:
      - { name: app, password: app }
    routing:
      max_replica_lag: { bytes: 16MB, time: 1s }
${mysql}`;
}
