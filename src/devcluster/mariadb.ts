import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { findBinary, freePort, isAlive, run, sleep, spawnServer, terminate, until, withMachineLock } from './proc.js';

/**
 * A real MariaDB cluster on 127.0.0.1: a primary (my0) and N GTID replicas
 * (my1..myN) with read_only=ON, from the machine's mariadbd. Users and the
 * `app` database are created on the primary after the replicas attach, so
 * replication carries them and every node starts from the same GTID state.
 */
export interface MariaNodeInfo {
  name: string;
  host: string;
  port: number;
  role: 'primary' | 'replica';
  dataDir: string;
  socket: string;
  cnf: string;
}

export interface MariaClusterInfo {
  kind: 'mysql';
  baseDir: string;
  nodes: MariaNodeInfo[];
  users: { superuser: { user: string; password: string }; app: { user: string; password: string } };
  database: string;
}

const SBIN = ['/usr/sbin', '/usr/bin', '/usr/local/bin'];

/**
 * A node's server settings besides where it keeps its files and listens (`null`: a flag
 * without a value). The tests' containers pass them as --options.
 */
export function mariaServerSettings(serverId: number, role: 'primary' | 'replica'): [name: string, value: string | null][] {
  return [
    ['server-id', String(serverId)],
    ['log-bin', 'mysql-bin'],
    ['binlog-format', 'ROW'],
    ['gtid-strict-mode', '1'],
    ['log-slave-updates', '1'],
    ['skip-name-resolve', null],
    ['innodb-buffer-pool-size', '32M'],
    ['innodb-log-file-size', '16M'],
    ['innodb-flush-log-at-trx-commit', '2'],
    ['sync-binlog', '0'],
    ['performance-schema', 'ON'],
    ['max-connections', '300'],
    ...(role === 'replica' ? [['read-only', 'ON'] as [string, string]] : []),
  ];
}

/** The replication user, made on the primary outside the binlog (so the replicas do not replay it). */
export const MARIA_REPL_USER_SQL = "SET sql_log_bin = 0; CREATE USER 'repl'@'%' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'; SET sql_log_bin = 1";

/** The users and the app database, made on the primary once the replicas attach (replication carries them). */
export const MARIA_BOOTSTRAP_SQL = [
  "CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY 'root'",
  "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION",
  'CREATE DATABASE app',
  "CREATE USER 'app'@'%' IDENTIFIED BY 'app'",
  "GRANT ALL PRIVILEGES ON app.* TO 'app'@'%'",
  "GRANT PROCESS, REPLICATION CLIENT, RELOAD ON *.* TO 'app'@'%'",
  "GRANT SELECT ON performance_schema.* TO 'app'@'%'",
].join('; ');

/** SQL on a connection of its own (several statements allowed), closed after; returns the rows. */
export async function mariaQueryOnce(options: mysql.ConnectionOptions, sql: string, params: unknown[] = []): Promise<unknown[]> {
  const c = await mysql.createConnection({ ...options, multipleStatements: true });
  try {
    const [rows] = await c.query(sql, params);
    return rows as unknown[];
  } finally {
    await c.end();
  }
}

/**
 * What the replication helpers below need of a cluster controller: this file's MariaCluster,
 * the tests' one (test/support/mariadb-cluster.ts) and their containers backend, which reach
 * their nodes differently (Unix socket / TCP) and tell differently whether a node runs.
 */
export interface MariaNodes {
  readonly info: { nodes: MariaNodeInfo[] };
  node(name: string): MariaNodeInfo;
  query<R = Record<string, unknown>>(node: string, sql: string, params?: unknown[]): Promise<R[]>;
}

function mariaPrimary(c: MariaNodes): MariaNodeInfo {
  const primary = c.info.nodes.find((n) => n.role === 'primary');
  if (!primary) throw new Error('the MariaDB cluster has no primary');
  return primary;
}

/** STOP SLAVE; RESET SLAVE ALL; read_only=OFF; its role becomes primary. */
export async function promoteMaria(c: MariaNodes, node: string): Promise<void> {
  await c.query(node, 'STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF');
  c.node(node).role = 'primary';
}

/** Every replica for which `running` says yes has executed the primary's current GTID position. */
export async function waitForMariaReplication(c: MariaNodes, running: (node: string) => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const [{ pos }] = (await c.query<{ pos: string }>(mariaPrimary(c).name, 'SELECT @@gtid_binlog_pos AS pos')) as [{ pos: string }];
  for (const r of c.info.nodes.filter((n) => n.role === 'replica')) {
    if (!(await running(r.name))) continue;
    await until(async () => {
      const [row] = await c.query<{ ok: number | null }>(r.name, 'SELECT MASTER_GTID_WAIT(?, 0) = 0 AS ok', [pos]);
      if (!row?.ok) throw new Error(`${r.name} has not reached ${pos}`);
    }, timeoutMs, `replication to ${r.name}`, 20);
  }
}

/** Transactions the replica is behind the primary, from GTID sequence numbers (domain 0). */
export async function mariaLagTransactions(c: MariaNodes, node: string): Promise<number> {
  const [{ pos }] = (await c.query<{ pos: string }>(mariaPrimary(c).name, 'SELECT @@gtid_binlog_pos AS pos')) as [{ pos: string }];
  const [{ spos }] = (await c.query<{ spos: string }>(node, 'SELECT @@gtid_slave_pos AS spos')) as [{ spos: string }];
  return seqOf(pos) - seqOf(spos);
}

interface SlaveStatusRow {
  Relay_Master_Log_File: string;
  Exec_Master_Log_Pos: number | string;
}

interface MasterStatusRow {
  File: string;
  Position: number | string;
}

interface BinaryLogRow {
  Log_name: string;
  File_size: number | string;
}

/**
 * Bytes of the primary's binlog the replica has not executed yet (the tests' lagBytes):
 *   1. the replica's executed coordinates (Relay_Master_Log_File, Exec_Master_Log_Pos);
 *   2. the primary's finished binlog files with their sizes, and its current file and position;
 *   3. the sum of what lies between the two. 0 for a primary.
 */
export async function mariaLagBytes(c: MariaNodes, node: string): Promise<number> {
  if (c.node(node).role === 'primary') return 0;
  const [slave] = await c.query<SlaveStatusRow>(node, 'SHOW SLAVE STATUS');
  if (!slave) throw new Error(`${node} is not replicating (SHOW SLAVE STATUS is empty)`);
  const primary = mariaPrimary(c);
  const logs = await c.query<BinaryLogRow>(primary.name, 'SHOW BINARY LOGS');
  const [current] = await c.query<MasterStatusRow>(primary.name, 'SHOW MASTER STATUS');
  if (!current) throw new Error(`${primary.name} has binary logging off`);
  const from = logs.findIndex((l) => l.Log_name === slave.Relay_Master_Log_File);
  const to = logs.findIndex((l) => l.Log_name === current.File);
  if (from < 0 || to < from) throw new Error(`${node} executes ${slave.Relay_Master_Log_File}, which ${primary.name} does not have`);
  const finished = logs.slice(from, to).reduce((sum, l) => sum + Number(l.File_size), 0);
  return finished + Number(current.Position) - Number(slave.Exec_Master_Log_Pos);
}

export class MariaCluster {
  private constructor(readonly info: MariaClusterInfo) {}

  static attach(info: MariaClusterInfo): MariaCluster {
    return new MariaCluster(info);
  }

  /**
   * 1. mariadb-install-db and start every node (replicas read_only);
   * 2. point the replicas at the primary with MASTER_USE_GTID=slave_pos;
   * 3. create users and the app database on the primary; wait for replication.
   */
  static async start(opts: { replicas?: number; baseDir?: string } = {}): Promise<MariaCluster> {
    const replicas = opts.replicas ?? 2;
    const baseDir = opts.baseDir ?? mkdtempSync(join(tmpdir(), 'switchyard-maria-'));
    mkdirSync(baseDir, { recursive: true });
    const info: MariaClusterInfo = {
      kind: 'mysql',
      baseDir,
      nodes: [],
      users: { superuser: { user: 'root', password: 'root' }, app: { user: 'app', password: 'app' } },
      database: 'app',
    };
    const cluster = new MariaCluster(info);
    try {
      const nodes: MariaNodeInfo[] = [];
      for (let i = 0; i <= replicas; i++) nodes.push(await cluster.newNode(`my${i}`, i === 0 ? 'primary' : 'replica', i + 1));
      // mariadb-install-db runs fail when run side by side: one at a time, then start all.
      for (const n of nodes) await cluster.install(n);
      await Promise.all(nodes.map((n) => cluster.startServer(n)));
      const primary = nodes[0]!;
      // The replication user first (on the primary only, outside the binlog), then the replicas.
      await cluster.rootQuery(primary, MARIA_REPL_USER_SQL);
      for (const r of nodes.slice(1)) {
        await cluster.rootQuery(r, `SET GLOBAL gtid_slave_pos = ''; CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primary.port}, MASTER_USER='repl', MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos; START SLAVE`);
      }
      await cluster.rootQuery(primary, MARIA_BOOTSTRAP_SQL);
      await cluster.waitForReplication(60_000);
      return cluster;
    } catch (e) {
      await cluster.stopAll();
      throw e;
    }
  }

  node(name: string): MariaNodeInfo {
    const n = this.info.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** Runs SQL as root over the node's Unix socket (multiple statements allowed). */
  async query<R = Record<string, unknown>>(node: string, sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.rootQuery(this.node(node), sql, params)) as R[];
  }

  async pauseReplay(node: string): Promise<void> {
    await this.query(node, 'STOP SLAVE SQL_THREAD');
  }

  async resumeReplay(node: string): Promise<void> {
    await this.query(node, 'START SLAVE SQL_THREAD');
  }

  async stop(node: string): Promise<void> {
    const pid = this.pid(node);
    if (pid) await terminate(pid, 30_000);
  }

  async start(node: string): Promise<void> {
    await this.startServer(this.node(node));
  }

  async kill(node: string): Promise<void> {
    const pid = this.pid(node);
    if (!pid) return;
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(20);
  }

  async promote(node: string): Promise<void> {
    await promoteMaria(this, node);
  }

  /** Every running replica has executed the primary's current GTID position. */
  async waitForReplication(timeoutMs = 30_000): Promise<void> {
    await waitForMariaReplication(this, (n) => this.pid(n) !== null, timeoutMs);
  }

  /** Transactions the replica is behind the primary, from GTID sequence numbers (domain 0). */
  async lagTransactions(node: string): Promise<number> {
    return mariaLagTransactions(this, node);
  }

  pid(node: string): number | null {
    const file = join(this.info.baseDir, `${node}.pid`);
    if (!existsSync(file)) return null;
    const pid = Number(readFileSync(file, 'utf8').trim());
    return pid > 0 && isAlive(pid) ? pid : null;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.info.nodes.map((n) => this.stop(n.name).catch(() => undefined)));
    rmSync(this.info.baseDir, { recursive: true, force: true });
  }

  // ---- building ----------------------------------------------------------

  private async newNode(name: string, role: 'primary' | 'replica', serverId: number): Promise<MariaNodeInfo> {
    const dataDir = join(this.info.baseDir, name);
    const node: MariaNodeInfo = {
      name,
      host: '127.0.0.1',
      port: await freePort(),
      role,
      dataDir,
      socket: join(this.info.baseDir, `${name}.sock`),
      cnf: join(this.info.baseDir, `${name}.cnf`),
    };
    const lines = [
      '[mysqld]',
      `datadir = ${dataDir}`,
      `port = ${node.port}`,
      'bind-address = 127.0.0.1',
      `socket = ${node.socket}`,
      `pid-file = ${join(this.info.baseDir, `${name}.pid`)}`,
      `log-error = ${join(this.info.baseDir, `${name}.err`)}`,
      ...mariaServerSettings(serverId, role).map(([k, v]) => (v === null ? k : `${k} = ${v}`)),
      'user = root',
      '',
    ];
    writeFileSync(node.cnf, lines.join('\n'));
    this.info.nodes.push(node);
    return node;
  }

  private async install(node: MariaNodeInfo): Promise<void> {
    const installDb = findBinary('mariadb-install-db', ['/usr/bin', '/usr/local/bin']);
    // One mariadb-install-db at a time on the whole machine, not only in this process: test
    // files that start their own cluster run in parallel workers, and two bootstraps side by
    // side fail ("Command failed", nothing on stderr).
    await withMachineLock(join(tmpdir(), 'switchyard-mariadb-install.lock'), () =>
      run(installDb, [`--defaults-file=${node.cnf}`, '--auth-root-authentication-method=socket', '--skip-test-db', '--user=root']),
    );
  }

  private async startServer(node: MariaNodeInfo): Promise<void> {
    const mariadbd = findBinary('mariadbd', SBIN);
    const log = openSync(join(this.info.baseDir, `${node.name}.out`), 'a');
    spawnServer(mariadbd, [`--defaults-file=${node.cnf}`], {}, log);
    closeSync(log);
    await until(async () => {
      await this.rootQuery(node, 'SELECT 1');
    }, 60_000, `start ${node.name}`);
  }

  private async rootQuery(node: MariaNodeInfo, sql: string, params: unknown[] = []): Promise<unknown[]> {
    return mariaQueryOnce({ socketPath: node.socket, user: 'root' }, sql, params);
  }
}

function seqOf(gtidPos: string): number {
  const m = /(?:^|,)0-\d+-(\d+)/.exec(gtidPos);
  return m ? Number(m[1]) : 0;
}
