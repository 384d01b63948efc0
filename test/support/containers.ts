import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { MARIA_BOOTSTRAP_SQL, MARIA_REPL_USER_SQL, mariaLagBytes, mariaLagTransactions, mariaQueryOnce, mariaServerSettings, promoteMaria, waitForMariaReplication, type MariaNodes } from '../../src/devcluster/mariadb.js';
import { PG_BOOTSTRAP, PG_SETTINGS, pgHba, pgLagBytes, pgQueryOnce, promotePg, waitForPgReplication, waitForPgStreaming, type PgNodes } from '../../src/devcluster/pg.js';
import { freePort, isAlive, sleep, until } from '../../src/devcluster/proc.js';
import { connectionInfoOf, type ClusterUser, type ConnectionInfo } from './cluster-info.js';
import type { MariaClusterInfo, MariaNodeInfo } from './mariadb-cluster.js';
import type { PgClusterInfo, PgNodeInfo } from './pg-cluster.js';
import { dockerEndpoint, type DockerEndpoint } from './test-backend.js';

/*
 * The `containers` test backend (SWITCHYARD_TEST_BACKEND=containers, or detect with a Docker
 * engine): the same two clusters as pg-cluster.ts / mariadb-cluster.ts, in Docker containers
 * started with testcontainers, described by the SAME info shapes, so a test that only uses the
 * info (ports, users, roles) and the controls runs unchanged.
 *
 * What differs from the local clusters, and why:
 *   - every node listens inside its container on the standard port; the host sees it on a
 *     fixed free port bound to 127.0.0.1 only (a fixed port, so a restarted container keeps it);
 *   - connections from the host reach the server from the Docker bridge, not from 127.0.0.1,
 *     so pg_hba.conf lines and MariaDB's root user match any address (`all`, root@'%');
 *   - dataDir, socketDir, socket, cnf and binDir are paths INSIDE the containers: a test that
 *     writes into a data dir (pg-backend-tls, topology-failover) needs the local backend;
 *   - query() goes over TCP as the superuser, not over the Unix socket;
 *   - stop/start/kill are container stop/start/kill: kill SIGKILLs every process of the node
 *     at once (locally only the postmaster is killed and its children exit when they notice);
 *   - pid() is the host pid of the container's main process when the engine runs on this
 *     kernel (native Linux Docker), else null (Docker Desktop's VM); freeze()/thaw() (docker
 *     pause/unpause, the cgroup freezer) stand in for SIGSTOP/SIGCONT where pid() is null.
 *     The freezer stops every process; the kernel still completes TCP handshakes, as with SIGSTOP.
 * Built by the globalSetup process only; a worker rebuilds a controller with attach(info) and
 * needs no testcontainers: its controls talk to the engine's HTTP API directly.
 */

export const PG_IMAGE = process.env.SWITCHYARD_TEST_PG_IMAGE ?? 'postgres:15';
export const MARIADB_IMAGE = process.env.SWITCHYARD_TEST_MARIADB_IMAGE ?? 'mariadb:10.11';

/** An engine the tests may talk to: a Unix socket or loopback TCP (never a remote host). */
export type Engine = Exclude<DockerEndpoint, { kind: 'refused' }>;

/** What a controller needs to find the containers again (plain JSON, travels in the info). */
export interface ContainerRefs {
  backend: 'containers';
  engine: Engine;
  /** Label value shared by every container of the cluster (teardown finds them by it). */
  clusterId: string;
  networkId: string;
  /** Node name -> container id. */
  ids: Record<string, string>;
}

export type PgContainersInfo = PgClusterInfo & { containers: ContainerRefs };
export type MariaContainersInfo = MariaClusterInfo & { containers: ContainerRefs };

/** True for an info the containers backend built (pg-cluster.ts / mariadb-cluster.ts attach() can dispatch on it). */
export function isContainersInfo(info: object): info is { containers: ContainerRefs } {
  const c = (info as { containers?: Partial<ContainerRefs> }).containers;
  return c?.backend === 'containers';
}

const LABEL_CLUSTER = 'switchyard.test.cluster';
const LABEL_OWNER = 'switchyard.test.owner';
const LABEL_HOST = 'switchyard.test.host';

// ---- the engine's HTTP API --------------------------------------------------

interface ApiResult {
  status: number;
  body: string;
}

function engineFromEnv(): Engine {
  const e = dockerEndpoint(process.env);
  if (e.kind === 'refused') throw new Error(`containers backend: DOCKER_HOST=${e.value} cannot be used: ${e.why}`);
  return e;
}

function api(engine: Engine, method: string, path: string, timeoutMs = 90_000): Promise<ApiResult> {
  return new Promise((resolve, reject) => {
    const target = engine.kind === 'unix' ? { socketPath: engine.path } : { host: engine.host, port: engine.port };
    const req = http.request({ ...target, method, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer from the Docker engine within ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Fails unless the status is one of `ok` (e.g. 304 "already stopped" counts as done). */
async function apiExpect(engine: Engine, method: string, path: string, ok: number[], timeoutMs?: number): Promise<ApiResult> {
  const r = await api(engine, method, path, timeoutMs);
  if (!ok.includes(r.status)) throw new Error(`Docker engine: ${method} ${path} answered ${r.status}: ${r.body.slice(0, 300)}`);
  return r;
}

/*
 * The same requests from a separate node process: synchronously for pid() (whose signature is
 * synchronous, as the local clusters' is), and detached for teardown on exit/SIGINT/SIGTERM,
 * so the removal outlives this process.
 */
const REQUESTS_SCRIPT = `
const http = require('node:http');
const { engine, requests } = JSON.parse(process.argv[1]);
const target = engine.kind === 'unix' ? { socketPath: engine.path } : { host: engine.host, port: engine.port };
(async () => {
  const out = [];
  for (const [method, path] of requests) {
    out.push(await new Promise((resolve) => {
      const req = http.request({ ...target, method, path, agent: false, timeout: 30000 }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode, body }));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', (e) => resolve({ status: 0, body: String(e.message) }));
      req.end();
    }));
  }
  process.stdout.write(JSON.stringify(out));
})();
`;

function apiSync(engine: Engine, method: string, path: string): ApiResult | null {
  const r = spawnSync(process.execPath, ['-e', REQUESTS_SCRIPT, JSON.stringify({ engine, requests: [[method, path]] })], { encoding: 'utf8', timeout: 10_000 });
  try {
    return (JSON.parse(r.stdout) as ApiResult[])[0] ?? null;
  } catch {
    return null;
  }
}

function removalRequests(refs: ContainerRefs): [string, string][] {
  return [...Object.values(refs.ids).map((id): [string, string] => ['DELETE', `/containers/${id}?force=true&v=true`]), ['DELETE', `/networks/${refs.networkId}`]];
}

/** Removes the containers and the network from a detached process: for exit paths that cannot await. */
function removeDetached(refs: ContainerRefs): void {
  try {
    spawn(process.execPath, ['-e', REQUESTS_SCRIPT, JSON.stringify({ engine: refs.engine, requests: removalRequests(refs) })], { detached: true, stdio: 'ignore' }).unref();
  } catch {
    // Best effort; testcontainers' Ryuk container removes the session's containers too.
  }
}

// Every cluster this process built and has not removed yet: removed on exit, SIGINT, SIGTERM.
const live = new Map<string, ContainerRefs>();
let armed = false;
function watch(refs: ContainerRefs): void {
  live.set(refs.clusterId, refs);
  if (armed) return;
  armed = true;
  const reap = () => {
    for (const r of live.values()) removeDetached(r);
    live.clear();
  };
  process.once('exit', reap);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      reap();
      if (process.listenerCount(signal) === 0) process.exit(code);
    });
  }
}

/**
 * Containers an earlier run on this host left behind (its owner process is gone): removed
 * before a new cluster starts, as reaper.ts cleanLeftovers() does for local clusters.
 */
async function removeLeftovers(engine: Engine): Promise<number> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`${LABEL_HOST}=${hostname()}`] }));
  const r = await apiExpect(engine, 'GET', `/containers/json?all=true&filters=${filters}`, [200]);
  const list = JSON.parse(r.body) as { Id: string; Labels: Record<string, string> }[];
  let removed = 0;
  for (const c of list) {
    const owner = Number(c.Labels[LABEL_OWNER]);
    if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) continue;
    await api(engine, 'DELETE', `/containers/${c.Id}?force=true&v=true`);
    removed++;
  }
  return removed;
}

// ---- shared controls -------------------------------------------------------

interface InspectState {
  Running: boolean;
  Paused: boolean;
  Pid: number;
}

/**
 * Container controls and the info-only methods shared by both clusters' controllers; `ready(node)`
 * is the server answering SQL.
 */
abstract class ContainerControls<I extends (PgClusterInfo | MariaClusterInfo) & { containers: ContainerRefs }> {
  /**
   * `serverCommand`: what the main process of a node's container runs, to tell a real host
   * pid from a VM's. Throws for an info the containers backend did not build.
   */
  protected constructor(
    readonly info: I,
    private readonly serverCommand: RegExp,
  ) {
    if (!isContainersInfo(info)) throw new Error(`${new.target.name}.attach: not an info of the containers backend`);
  }

  /** SQL as the superuser over TCP. */
  abstract query(node: string, sql: string): Promise<unknown[]>;

  protected get refs(): ContainerRefs {
    return this.info.containers;
  }

  protected async ready(node: string): Promise<void> {
    await this.query(node, 'SELECT 1');
  }

  node(name: string): I['nodes'][number] {
    const n = (this.info.nodes as I['nodes'][number][]).find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  connectionInfo(node: string, as: ClusterUser = 'superuser'): ConnectionInfo {
    return connectionInfoOf(this.info, node, as);
  }

  pids(): number[] {
    return this.info.nodes.map((n) => this.pid(n.name)).filter((p): p is number => p !== null);
  }

  protected id(node: string): string {
    const id = this.refs.ids[node];
    if (!id) throw new Error(`no container for node ${node}`);
    return id;
  }

  protected async state(node: string): Promise<InspectState> {
    const r = await apiExpect(this.refs.engine, 'GET', `/containers/${this.id(node)}/json`, [200]);
    return (JSON.parse(r.body) as { State: InspectState }).State;
  }

  protected async running(node: string): Promise<boolean> {
    return (await this.state(node)).Running;
  }

  /** docker stop: the image's stop signal (PostgreSQL: SIGINT, a fast shutdown; MariaDB: SIGTERM), SIGKILL after 30s. */
  async stop(node: string): Promise<void> {
    await apiExpect(this.refs.engine, 'POST', `/containers/${this.id(node)}/stop?t=30`, [204, 304], 60_000);
  }

  /** docker start, then wait until the server answers SQL (as the local start waits for pg_ctl -w / a query). */
  async start(node: string): Promise<void> {
    await apiExpect(this.refs.engine, 'POST', `/containers/${this.id(node)}/start`, [204, 304]);
    await until(() => this.ready(node), 60_000, `start ${node}`);
  }

  /** docker kill -s KILL: every process of the node dies at once; waits until the container has exited. */
  async kill(node: string): Promise<void> {
    const r = await api(this.refs.engine, 'POST', `/containers/${this.id(node)}/kill?signal=SIGKILL`);
    if (r.status === 409) return; // not running
    if (r.status !== 204) throw new Error(`Docker engine: kill ${node} answered ${r.status}: ${r.body.slice(0, 300)}`);
    for (const deadline = Date.now() + 10_000; await this.running(node); await sleep(20)) {
      if (Date.now() > deadline) throw new Error(`${node}: container still running 10s after SIGKILL`);
    }
  }

  /** docker pause: the SIGSTOP stand-in (cgroup freezer: the node accepts TCP, answers nothing). */
  async freeze(node: string): Promise<void> {
    await apiExpect(this.refs.engine, 'POST', `/containers/${this.id(node)}/pause`, [204]);
  }

  /** docker unpause: the SIGCONT stand-in. */
  async thaw(node: string): Promise<void> {
    await apiExpect(this.refs.engine, 'POST', `/containers/${this.id(node)}/unpause`, [204]);
  }

  /**
   * The host pid of the node's server (the container's main process), or null when it is not
   * running or the engine does not share this kernel (then the pid would mean nothing here,
   * and signalling it could hit an unrelated process: it must match the server's command).
   */
  pid(node: string): number | null {
    const r = apiSync(this.refs.engine, 'GET', `/containers/${this.id(node)}/json`);
    if (!r || r.status !== 200) return null;
    const { Running, Pid } = (JSON.parse(r.body) as { State: InspectState }).State;
    if (!Running || !(Pid > 0)) return null;
    try {
      return this.serverCommand.test(readFileSync(`/proc/${Pid}/cmdline`, 'utf8')) ? Pid : null;
    } catch {
      return null;
    }
  }

  /** Removes every container of the cluster (by id, and by label for one whose start failed half-way), the network and the record dir. Never throws. */
  async stopAll(): Promise<void> {
    const { engine, clusterId } = this.refs;
    try {
      const filters = encodeURIComponent(JSON.stringify({ label: [`${LABEL_CLUSTER}=${clusterId}`] }));
      const r = await api(engine, 'GET', `/containers/json?all=true&filters=${filters}`);
      const labelled = r.status === 200 ? (JSON.parse(r.body) as { Id: string }[]).map((c) => c.Id) : [];
      const ids = [...new Set([...Object.values(this.refs.ids), ...labelled])];
      await Promise.all(ids.map((id) => api(engine, 'DELETE', `/containers/${id}?force=true&v=true`).catch(() => undefined)));
      if (this.refs.networkId) await api(engine, 'DELETE', `/networks/${this.refs.networkId}`).catch(() => undefined);
    } catch {
      // The engine went away: Ryuk (if it runs) or the next run's removeLeftovers() gets them.
    }
    live.delete(clusterId);
    rmSync(this.info.baseDir, { recursive: true, force: true });
  }
}

// ---- building with testcontainers ------------------------------------------

type Testcontainers = typeof import('testcontainers');

interface Building {
  tc: Testcontainers;
  refs: ContainerRefs;
  network: import('testcontainers').StartedNetwork;
  baseDir: string;
  labels: Record<string, string>;
  /** The info fields both clusters fill alike. */
  common: { baseDir: string; nodes: []; database: 'app'; containers: ContainerRefs };
}

/**
 * 1. load testcontainers (only here: local runs and workers never load it);
 * 2. point it at the engine our probe found (DOCKER_HOST), remove containers of dead earlier runs;
 * 3. create the cluster's network and its record dir; watch it for exit/signals.
 */
async function beginBuilding(prefix: string): Promise<Building> {
  const engine = engineFromEnv();
  // testcontainers would otherwise look on its own (properties file, rootless socket, ...) and
  // could find another engine than the one the backend choice probed.
  process.env.DOCKER_HOST ??= engine.kind === 'unix' ? `unix://${engine.path}` : `tcp://${engine.host}:${engine.port}`;
  const tc = await import('testcontainers');
  const leftovers = await removeLeftovers(engine);
  if (leftovers > 0) console.log(`[test clusters] removed ${leftovers} container(s) left by an interrupted run`);
  const clusterId = randomUUID();
  const network = await new tc.Network().start();
  const refs: ContainerRefs = { backend: 'containers', engine, clusterId, networkId: network.getId(), ids: {} };
  watch(refs);
  const baseDir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(baseDir, 'containers.json'), JSON.stringify({ owner: process.pid, ...refs }));
  const labels = { [LABEL_CLUSTER]: clusterId, [LABEL_OWNER]: String(process.pid), [LABEL_HOST]: hostname() };
  return { tc, refs, network, baseDir, labels, common: { baseDir, nodes: [], database: 'app', containers: refs } };
}

/**
 * A GenericContainer whose published ports bind 127.0.0.1 only (testcontainers binds every
 * interface), on the fixed host ports given to withExposedPorts.
 */
export function loopbackContainer(tc: Testcontainers, image: string): import('testcontainers').GenericContainer {
  class LoopbackContainer extends tc.GenericContainer {
    protected override async beforeContainerCreated(): Promise<void> {
      const bindings = this.hostConfig.PortBindings as Record<string, { HostIp?: string; HostPort?: string }[]> | undefined;
      for (const list of Object.values(bindings ?? {})) for (const b of list) b.HostIp = '127.0.0.1';
    }
  }
  return new LoopbackContainer(image);
}

function recordIds(b: Building): void {
  writeFileSync(join(b.baseDir, 'containers.json'), JSON.stringify({ owner: process.pid, ...b.refs }));
}

// ---- PostgreSQL ----------------------------------------------------------------

const PG_HBA_PATH = '/etc/switchyard/pg_hba.conf';

// As the local cluster's, with `all` for 127.0.0.1/32: host connections arrive from the bridge.
const PG_HBA = pgHba('all', "# written by switchyard's containers test backend");

// The local cluster's postgresql.conf settings (src/devcluster/pg.ts), as server options.
const PG_OPTIONS = [`hba_file=${PG_HBA_PATH}`, 'listen_addresses=*', ...PG_SETTINGS.map(([k, v]) => `${k}=${v}`)].flatMap((s) => ['-c', s]);

/*
 * A replica's entrypoint (bash -c; $0 is the node name, "$@" the server options):
 *   1. first start only (no PG_VERSION yet): pg_basebackup -R from pg0 with slot slot_<node>;
 *   2. run the server as postgres, as PID 1 (so docker stop/kill reach the postmaster).
 * A restarted container keeps its data (the image's volume) and skips step 1.
 */
const PG_REPLICA_ENTRYPOINT = `set -e
D="$PGDATA"
if [ ! -s "$D/PG_VERSION" ]; then
  mkdir -p "$D"; chown postgres:postgres "$D"; chmod 700 "$D"
  gosu postgres pg_basebackup -h pg0 -p 5432 -U postgres -D "$D" -R -X stream -c fast -C -S "slot_$0" --no-sync
fi
chmod 700 "$D"
exec gosu postgres postgres "$@"`;

/** The tests' PostgreSQL cluster in containers: same info shape and method names as PgCluster. */
export class PgContainers extends ContainerControls<PgContainersInfo> implements PgNodes {
  private constructor(info: PgContainersInfo) {
    super(info, /postgres/);
  }

  static attach(info: PgClusterInfo): PgContainers {
    return new PgContainers(info as PgContainersInfo);
  }

  /**
   * 1. the primary pg0 (the image's initdb, our pg_hba.conf and settings), then roles and databases;
   * 2. each replica pgN: pg_basebackup -R -C -S slot_pgN from pg0 inside its container, then started;
   * 3. wait until every replica streams and has replayed the primary's position.
   */
  static async start(opts: { replicas?: number } = {}): Promise<PgContainers> {
    const replicas = opts.replicas ?? 2;
    const b = await beginBuilding('switchyard-containers-pg-');
    const info: PgContainersInfo = {
      ...b.common,
      kind: 'postgres',
      binDir: '/usr/lib/postgresql/15/bin',
      runAs: {},
      users: { superuser: { user: 'postgres', password: 'postgres' }, app: { user: 'app', password: 'app' } },
    };
    const cluster = new PgContainers(info);
    try {
      for (let i = 0; i <= replicas; i++) {
        const name = `pg${i}`;
        const node: PgNodeInfo = { name, host: '127.0.0.1', port: await freePort(), role: i === 0 ? 'primary' : 'replica', dataDir: '/var/lib/postgresql/data', socketDir: '/var/run/postgresql' };
        let c = loopbackContainer(b.tc, PG_IMAGE)
          .withNetwork(b.network)
          .withNetworkAliases(name)
          .withLabels(b.labels)
          .withCopyContentToContainer([{ content: PG_HBA, target: PG_HBA_PATH, mode: 0o644 }])
          .withExposedPorts({ container: 5432, host: node.port })
          .withWaitStrategy(b.tc.Wait.forListeningPorts())
          .withStartupTimeout(180_000);
        c =
          i === 0
            ? c
                .withEnvironment({ POSTGRES_USER: 'postgres', POSTGRES_PASSWORD: 'postgres', POSTGRES_INITDB_ARGS: '--locale=C --encoding=UTF8 --no-sync' })
                .withCommand(['postgres', ...PG_OPTIONS])
            : c.withEntrypoint(['bash', '-c', PG_REPLICA_ENTRYPOINT, name]).withCommand(PG_OPTIONS);
        const started = await c.start();
        b.refs.ids[name] = started.getId();
        recordIds(b);
        info.nodes.push(node);
        await until(() => cluster.ready(name), 60_000, `start ${name}`);
        if (i === 0) for (const [db, sql] of PG_BOOTSTRAP) await cluster.query(name, sql, [], db);
      }
      await waitForPgStreaming(cluster, replicas);
      await cluster.waitForReplication();
      return cluster;
    } catch (e) {
      await cluster.stopAll();
      throw e;
    }
  }

  /** One statement as the superuser, over TCP (the local cluster uses the node's Unix socket). */
  async query<R extends Record<string, unknown> = Record<string, unknown>>(node: string, sql: string, params: unknown[] = [], database = 'postgres'): Promise<R[]> {
    const n = this.node(node);
    return pgQueryOnce<R>({ host: n.host, port: n.port, user: 'postgres', password: 'postgres', database }, sql, params);
  }

  async pauseReplay(node: string): Promise<void> {
    await this.query(node, 'SELECT pg_wal_replay_pause()');
  }

  async resumeReplay(node: string): Promise<void> {
    await this.query(node, 'SELECT pg_wal_replay_resume()');
  }

  promote(node: string): Promise<void> {
    return promotePg(this, node);
  }

  waitForReplication(timeoutMs = 30_000): Promise<void> {
    return waitForPgReplication(this, (n) => this.running(n), timeoutMs);
  }

  lagBytes(node: string): Promise<number> {
    return pgLagBytes(this, node);
  }
}

// ---- MariaDB -----------------------------------------------------------------------

/** The local cluster's my.cnf settings (src/devcluster/mariadb.ts), as server options. */
function mariaOptions(serverId: number, role: 'primary' | 'replica'): string[] {
  return ['--bind-address=0.0.0.0', ...mariaServerSettings(serverId, role).map(([k, v]) => (v === null ? `--${k}` : `--${k}=${v}`))];
}

/** The tests' MariaDB cluster in containers: same info shape and method names as MariaCluster. */
export class MariaContainers extends ContainerControls<MariaContainersInfo> implements MariaNodes {
  private constructor(info: MariaContainersInfo) {
    super(info, /mariadbd|mysqld/);
  }

  static attach(info: MariaClusterInfo): MariaContainers {
    return new MariaContainers(info as MariaContainersInfo);
  }

  /**
   * 1. start every node (the image's install; replicas read_only), in parallel;
   * 2. RESET MASTER everywhere, so no node carries GTIDs of its own image setup (gtid_strict_mode);
   * 3. the repl user on the primary outside the binlog, point the replicas at my0 (MASTER_USE_GTID=slave_pos);
   * 4. the users and the app database on the primary; wait until the replicas have them.
   */
  static async start(opts: { replicas?: number } = {}): Promise<MariaContainers> {
    const replicas = opts.replicas ?? 2;
    const b = await beginBuilding('switchyard-containers-maria-');
    const info: MariaContainersInfo = {
      ...b.common,
      kind: 'mysql',
      binDir: '/usr/sbin',
      users: { superuser: { user: 'root', password: 'root' }, app: { user: 'app', password: 'app' } },
    };
    const cluster = new MariaContainers(info);
    try {
      const nodes: MariaNodeInfo[] = [];
      for (let i = 0; i <= replicas; i++) {
        nodes.push({ name: `my${i}`, host: '127.0.0.1', port: await freePort(), role: i === 0 ? 'primary' : 'replica', dataDir: '/var/lib/mysql', socket: '/run/mysqld/mysqld.sock', cnf: '/etc/mysql/my.cnf' });
      }
      info.nodes.push(...nodes);
      // allSettled: a failed node must not leave the others still starting while stopAll runs.
      const starts = await Promise.allSettled(
        nodes.map(async (n, i) => {
          const started = await loopbackContainer(b.tc, MARIADB_IMAGE)
            .withNetwork(b.network)
            .withNetworkAliases(n.name)
            .withLabels(b.labels)
            .withEnvironment({ MARIADB_ROOT_PASSWORD: 'root', MARIADB_INITDB_SKIP_TZINFO: '1' })
            .withCommand(mariaOptions(i + 1, n.role))
            .withExposedPorts({ container: 3306, host: n.port })
            .withWaitStrategy(b.tc.Wait.forListeningPorts())
            .withStartupTimeout(180_000)
            .start();
          b.refs.ids[n.name] = started.getId();
          await until(() => cluster.ready(n.name), 60_000, `start ${n.name}`);
        }),
      );
      recordIds(b);
      const failed = starts.flatMap((s, i) => (s.status === 'rejected' ? [`${nodes[i]!.name}: ${(s.reason as Error)?.message ?? s.reason}`] : []));
      if (failed.length > 0) throw new Error(`MariaDB containers did not start: ${failed.join('; ')}`);
      const primary = nodes[0]!;
      for (const n of nodes) await cluster.query(n.name, "RESET MASTER; SET GLOBAL gtid_slave_pos = ''");
      await cluster.query(primary.name, MARIA_REPL_USER_SQL);
      for (const r of nodes.slice(1)) {
        await cluster.query(r.name, `CHANGE MASTER TO MASTER_HOST='${primary.name}', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos; START SLAVE`);
      }
      await cluster.query(primary.name, MARIA_BOOTSTRAP_SQL);
      await cluster.waitForReplication(60_000);
      return cluster;
    } catch (e) {
      await cluster.stopAll();
      throw e;
    }
  }

  /** SQL as root over TCP (several statements allowed); returns the rows. */
  async query<R = Record<string, unknown>>(node: string, sql: string, params: unknown[] = []): Promise<R[]> {
    const n = this.node(node);
    return (await mariaQueryOnce({ host: n.host, port: n.port, user: 'root', password: 'root' }, sql, params)) as R[];
  }

  async pauseReplay(node: string): Promise<void> {
    await this.query(node, 'STOP SLAVE SQL_THREAD');
  }

  async resumeReplay(node: string): Promise<void> {
    await this.query(node, 'START SLAVE SQL_THREAD');
  }

  promote(node: string): Promise<void> {
    return promoteMaria(this, node);
  }

  waitForReplication(timeoutMs = 30_000): Promise<void> {
    return waitForMariaReplication(this, (n) => this.running(n), timeoutMs);
  }

  lagTransactions(node: string): Promise<number> {
    return mariaLagTransactions(this, node);
  }

  /** As MariaCluster.lagBytes: the primary's binlog bytes between the replica's executed position and the primary's current one. */
  lagBytes(node: string): Promise<number> {
    return mariaLagBytes(this, node);
  }
}
