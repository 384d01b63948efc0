import { appendFileSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { findBinary, freePort, isAlive, run, runAsFor, sleep, terminate, until, type RunAs } from './proc.js';

/**
 * A real PostgreSQL cluster on 127.0.0.1 from the machine's server binaries:
 * a primary (pg0) and N hot-standby streaming replicas (pg1..pgN) made with
 * pg_basebackup -R and replication slots. Used by `switchyard demo` and the
 * tests. Everything lives in one temp dir; stopAll() removes it.
 */
export interface PgNodeInfo {
  name: string;
  host: string;
  port: number;
  role: 'primary' | 'replica';
  dataDir: string;
  socketDir: string;
}

export interface PgClusterInfo {
  kind: 'postgres';
  baseDir: string;
  binDir: string;
  runAs: RunAs;
  nodes: PgNodeInfo[];
  users: { superuser: { user: string; password: string }; app: { user: string; password: string } };
  database: string;
}

const PG_DIRS = ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin'];

/**
 * pg_hba.conf for a cluster whose clients connect from `from` (127.0.0.1/32 here; `all` for
 * the tests' containers, whose host connections arrive from the Docker bridge).
 */
export function pgHba(from: string, header = "# written by switchyard's dev cluster"): string {
  return `${header}
local all all trust
local replication all trust
host replication all ${from} trust
host all md5user ${from} md5
host all trustuser ${from} trust
host all plainuser ${from} password
host all all ${from} scram-sha-256
`;
}

/** postgresql.conf settings of every node besides listen_addresses, port and socket (the tests' containers pass them as -c options). */
export const PG_SETTINGS: readonly (readonly [name: string, value: string])[] = [
  ['shared_preload_libraries', 'pg_stat_statements'],
  ['pg_stat_statements.track', 'all'],
  ['wal_level', 'replica'],
  ['max_wal_senders', '10'],
  ['max_replication_slots', '10'],
  ['hot_standby', 'on'],
  ['hot_standby_feedback', 'on'],
  ['fsync', 'off'],
  ['synchronous_commit', 'off'],
  ['full_page_writes', 'off'],
  ['shared_buffers', '32MB'],
  // The bench (bench/run.ts) keeps every system up at once: at 64 clients the primary holds up to
  // ~215 connections (Pgpool-II's 70 children cache theirs, PgBouncer 20, switchyard 20 and 2 x 20
  // with --workers 2, pgbench's 64); with 200 the direct and HAProxy TPC-B runs were refused.
  ['max_connections', '300'],
  ['log_min_messages', 'warning'],
];

/**
 * The roles, databases and extensions made on a new primary, as (database, statement):
 * each statement is a session of its own, so the md5 setting is one DO block with its CREATE ROLE.
 */
export const PG_BOOTSTRAP: readonly (readonly [database: string, sql: string])[] = [
  ['postgres', "CREATE ROLE app LOGIN PASSWORD 'app'"],
  ['postgres', 'CREATE DATABASE app OWNER app'],
  ['postgres', "DO $$ BEGIN SET LOCAL password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'md5pw'; END $$"],
  ['postgres', 'CREATE ROLE trustuser LOGIN'],
  ['postgres', "CREATE ROLE plainuser LOGIN PASSWORD 'plainpw'"],
  ['postgres', 'GRANT ALL ON DATABASE app TO md5user, trustuser, plainuser'],
  ['postgres', 'GRANT pg_read_all_stats, pg_signal_backend TO app'],
  ['postgres', 'CREATE EXTENSION pg_stat_statements'],
  ['app', 'CREATE EXTENSION pg_stat_statements'],
  ['app', 'GRANT ALL ON SCHEMA public TO md5user, trustuser, plainuser'],
];

/** One statement on a connection of its own, closed after. */
export async function pgQueryOnce<R extends Record<string, unknown>>(config: pg.ClientConfig, sql: string, params: unknown[] = []): Promise<R[]> {
  const c = new pg.Client(config);
  await c.connect();
  try {
    return (await c.query<R>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/**
 * What the replication helpers below need of a cluster controller: this file's PgCluster
 * and the tests' containers backend (test/support/containers.ts), which reach their nodes
 * differently (Unix socket / TCP) and tell differently whether a node runs.
 */
export interface PgNodes {
  readonly info: { nodes: PgNodeInfo[] };
  node(name: string): PgNodeInfo;
  query<R extends Record<string, unknown> = Record<string, unknown>>(node: string, sql: string, params?: unknown[], database?: string): Promise<R[]>;
}

function pgPrimary(c: PgNodes): PgNodeInfo {
  return c.info.nodes.find((n) => n.role === 'primary')!;
}

/** pg_promote() and wait until the node accepts writes; its role becomes primary. */
export async function promotePg(c: PgNodes, node: string): Promise<void> {
  await c.query(node, 'SELECT pg_promote(true, 30)');
  await until(async () => {
    const [r] = await c.query<{ r: boolean }>(node, 'SELECT pg_is_in_recovery() AS r');
    if (r!.r) throw new Error('still in recovery');
  }, 30_000, `promote ${node}`);
  c.node(node).role = 'primary';
}

/** Every replica for which `running` says yes has replayed the primary's current WAL position. */
export async function waitForPgReplication(c: PgNodes, running: (node: string) => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const [{ lsn }] = (await c.query<{ lsn: string }>(pgPrimary(c).name, 'SELECT pg_current_wal_insert_lsn()::text AS lsn')) as [{ lsn: string }];
  for (const r of c.info.nodes.filter((n) => n.role === 'replica')) {
    if (!(await running(r.name))) continue;
    await until(async () => {
      const [row] = await c.query<{ behind: boolean }>(r.name, 'SELECT pg_last_wal_replay_lsn() < $1::pg_lsn AS behind', [lsn]);
      if (row!.behind) throw new Error('behind');
    }, timeoutMs, `replication to ${r.name}`, 20);
  }
}

/** Bytes between the primary's current WAL position and the replica's replay position. */
export async function pgLagBytes(c: PgNodes, node: string): Promise<number> {
  const [{ lsn }] = (await c.query<{ lsn: string }>(pgPrimary(c).name, 'SELECT pg_current_wal_insert_lsn()::text AS lsn')) as [{ lsn: string }];
  const [row] = await c.query<{ lag: string }>(node, 'SELECT pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn())::bigint AS lag', [lsn]);
  return Number(row!.lag);
}

/** Waits until pg0 has `replicas` streaming replicas (a new cluster's last step before waitForReplication). */
export async function waitForPgStreaming(c: PgNodes, replicas: number): Promise<void> {
  await until(async () => {
    const rows = await c.query<{ n: number }>('pg0', "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'");
    if (Number(rows[0]!.n) < replicas) throw new Error(`${rows[0]!.n}/${replicas} streaming`);
  }, 60_000, 'replicas streaming');
}

export class PgCluster {
  private constructor(readonly info: PgClusterInfo) {}

  static attach(info: PgClusterInfo): PgCluster {
    return new PgCluster(info);
  }

  /**
   * 1. initdb the primary, configure it, start it, create roles and databases;
   * 2. pg_basebackup -R each replica (with a replication slot), start them;
   * 3. wait until every replica streams.
   */
  static async start(opts: { replicas?: number; baseDir?: string } = {}): Promise<PgCluster> {
    const replicas = opts.replicas ?? 2;
    const binDir = findBinary('initdb', PG_DIRS).replace(/\/initdb$/, '');
    const runAs = await runAsFor('postgres');
    const baseDir = opts.baseDir ?? mkdtempSync(join(tmpdir(), 'switchyard-pg-'));
    mkdirSync(baseDir, { recursive: true });
    if (runAs.uid !== undefined) chownSync(baseDir, runAs.uid, runAs.gid!);
    const info: PgClusterInfo = {
      kind: 'postgres',
      baseDir,
      binDir,
      runAs,
      nodes: [],
      users: { superuser: { user: 'postgres', password: 'postgres' }, app: { user: 'app', password: 'app' } },
      database: 'app',
    };
    const cluster = new PgCluster(info);
    try {
      const primary = await cluster.newNode('pg0', 'primary');
      const pwfile = join(baseDir, 'pwfile');
      writeFileSync(pwfile, 'postgres\n');
      if (runAs.uid !== undefined) chownSync(pwfile, runAs.uid, runAs.gid!);
      await run(`${binDir}/initdb`, ['-D', primary.dataDir, '-U', 'postgres', '--pwfile', pwfile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'], runAs);
      writeFileSync(join(primary.dataDir, 'pg_hba.conf'), pgHba('127.0.0.1/32'));
      appendFileSync(join(primary.dataDir, 'postgresql.conf'), ["listen_addresses = '127.0.0.1'", ...PG_SETTINGS.map(([k, v]) => `${k} = ${v}`), ''].join('\n'));
      cluster.writeNodeConf(primary);
      await cluster.startNode(primary);
      await cluster.bootstrapRoles(primary);
      for (let i = 1; i <= replicas; i++) {
        const node = await cluster.newNode(`pg${i}`, 'replica');
        await run(`${binDir}/pg_basebackup`, ['-h', primary.socketDir, '-p', String(primary.port), '-U', 'postgres', '-D', node.dataDir, '-R', '-X', 'stream', '-c', 'fast', '-C', '-S', `slot_${node.name}`, '--no-sync'], runAs);
        cluster.writeNodeConf(node);
        await cluster.startNode(node);
      }
      await cluster.waitForStreaming();
      return cluster;
    } catch (e) {
      await cluster.stopAll();
      throw e;
    }
  }

  node(name: string): PgNodeInfo {
    const n = this.info.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** Runs one statement as the superuser over the node's Unix socket. */
  async query<R extends Record<string, unknown> = Record<string, unknown>>(node: string, sql: string, params: unknown[] = [], database = 'postgres'): Promise<R[]> {
    const n = this.node(node);
    return pgQueryOnce<R>({ host: n.socketDir, port: n.port, user: 'postgres', database }, sql, params);
  }

  async pauseReplay(node: string): Promise<void> {
    await this.query(node, 'SELECT pg_wal_replay_pause()');
  }

  async resumeReplay(node: string): Promise<void> {
    await this.query(node, 'SELECT pg_wal_replay_resume()');
  }

  async stop(node: string): Promise<void> {
    const n = this.node(node);
    if (!existsSync(join(n.dataDir, 'postmaster.pid'))) return;
    await run(`${this.info.binDir}/pg_ctl`, ['-D', n.dataDir, '-m', 'fast', '-w', '-t', '30', 'stop'], this.info.runAs).catch(async () => {
      const pid = this.pid(node);
      if (pid) await terminate(pid);
    });
  }

  async start(node: string): Promise<void> {
    await this.startNode(this.node(node));
  }

  /** SIGKILL the postmaster (its children exit when they notice). */
  async kill(node: string): Promise<void> {
    const pid = this.pid(node);
    if (!pid) return;
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(20);
  }

  async promote(node: string): Promise<void> {
    await promotePg(this, node);
  }

  /** Every running replica has replayed the primary's current WAL position. */
  async waitForReplication(timeoutMs = 30_000): Promise<void> {
    await waitForPgReplication(this, (n) => this.pid(n) !== null, timeoutMs);
  }

  /** Bytes between the primary's current WAL position and the replica's replay position. */
  async lagBytes(node: string): Promise<number> {
    return pgLagBytes(this, node);
  }

  /** The postmaster's pid from postmaster.pid, or null when it is not running. */
  pid(node: string): number | null {
    const file = join(this.node(node).dataDir, 'postmaster.pid');
    if (!existsSync(file)) return null;
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return pid > 0 && isAlive(pid) ? pid : null;
  }

  /** Stops every node (killing what does not stop in time) and removes the temp dir. */
  async stopAll(): Promise<void> {
    await Promise.all(this.info.nodes.map((n) => this.stop(n.name).catch(() => undefined)));
    for (const n of this.info.nodes) {
      const pid = this.pid(n.name);
      if (pid) await terminate(pid, 1000);
    }
    rmSync(this.info.baseDir, { recursive: true, force: true });
  }

  // ---- building ----------------------------------------------------------

  private async newNode(name: string, role: 'primary' | 'replica'): Promise<PgNodeInfo> {
    const node: PgNodeInfo = {
      name,
      host: '127.0.0.1',
      port: await freePort(),
      role,
      dataDir: join(this.info.baseDir, name),
      socketDir: join(this.info.baseDir, `${name}-sock`),
    };
    mkdirSync(node.socketDir, { recursive: true });
    if (this.info.runAs.uid !== undefined) chownSync(node.socketDir, this.info.runAs.uid, this.info.runAs.gid!);
    this.info.nodes.push(node);
    return node;
  }

  /** Per-node settings last in postgresql.conf, so they override what a base backup copied. */
  private writeNodeConf(node: PgNodeInfo): void {
    appendFileSync(join(node.dataDir, 'postgresql.conf'), `port = ${node.port}\nunix_socket_directories = '${node.socketDir}'\n`);
  }

  private async startNode(node: PgNodeInfo): Promise<void> {
    await run(`${this.info.binDir}/pg_ctl`, ['-D', node.dataDir, '-l', join(node.dataDir, 'server.log'), '-w', '-t', '60', 'start'], this.info.runAs);
  }

  private async bootstrapRoles(primary: PgNodeInfo): Promise<void> {
    for (const [db, sql] of PG_BOOTSTRAP) await this.query(primary.name, sql, [], db);
  }

  private async waitForStreaming(): Promise<void> {
    await waitForPgStreaming(this, this.info.nodes.filter((n) => n.role === 'replica').length);
    await this.waitForReplication();
  }
}
