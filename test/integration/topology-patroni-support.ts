import { chownSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { findBinary, freePort, isAlive, runAsFor, sleep, spawnServer, until, type RunAs } from '../../src/devcluster/proc.js';
import { stopOrKill } from '../support/proc.js';

/**
 * A real Patroni-managed PostgreSQL 15 cluster on 127.0.0.1: one etcd and three
 * Patroni instances (pa0..pa2) from Debian's `etcd-server` and `patroni`
 * packages, everything in one temp dir, random ports. Roles and databases the
 * switchyard tests need (app/app, pg_stat_statements) are created once a leader exists.
 */
export interface PatroniNode {
  name: string;
  host: string;
  port: number;
  apiPort: number;
  dataDir: string;
  configFile: string;
  pid: number;
  tags: Record<string, boolean>;
}

const PG_DIRS = ['/usr/lib/postgresql/15/bin'];

/** The binaries this needs, or why they are missing (the test skips with that message). */
export function patroniMissing(): string | null {
  const missing: string[] = [];
  for (const [bin, pkg] of [
    ['patroni', 'patroni'],
    ['etcd', 'etcd-server'],
  ] as const) {
    try {
      findBinary(bin, ['/usr/bin']);
    } catch {
      missing.push(`${bin} (Debian package ${pkg})`);
    }
  }
  if (!existsSync(`${PG_DIRS[0]}/postgres`)) missing.push('PostgreSQL 15 (postgresql-15)');
  return missing.length ? `not installed: ${missing.join(', ')}; run scripts/install-deps.sh as root` : null;
}

export class PatroniCluster {
  readonly users = { superuser: { user: 'postgres', password: 'postgres' }, app: { user: 'app', password: 'app' } };
  readonly database = 'app';
  private constructor(
    readonly baseDir: string,
    readonly runAs: RunAs,
    readonly etcdPid: number,
    readonly etcdPort: number,
    readonly nodes: PatroniNode[],
  ) {}

  /**
   * 1. start etcd; 2. start three Patroni instances (the first to take the
   * leader key runs initdb, the others pg_basebackup from it); 3. wait until
   * /cluster shows a leader and two streaming replicas; 4. create the app role,
   * database and pg_stat_statements on the leader and wait for them on the replicas.
   */
  static async start(tags: Record<string, Record<string, boolean>> = {}): Promise<PatroniCluster> {
    const runAs = await runAsFor('postgres');
    const baseDir = mkdtempSync(join(tmpdir(), 'switchyard-patroni-'));
    if (runAs.uid !== undefined) chownSync(baseDir, runAs.uid, runAs.gid!);
    const etcdPort = await freePort();
    const peerPort = await freePort();
    const etcdLog = openSync(join(baseDir, 'etcd.log'), 'a');
    const etcdPid = spawnServer(
      findBinary('etcd', ['/usr/bin']),
      [
        '--name', 'sy', '--data-dir', join(baseDir, 'etcd'),
        '--listen-client-urls', `http://127.0.0.1:${etcdPort}`, '--advertise-client-urls', `http://127.0.0.1:${etcdPort}`,
        '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
        '--initial-cluster', `sy=http://127.0.0.1:${peerPort}`, '--log-level', 'warn',
      ],
      runAs,
      etcdLog,
    );
    const cluster = new PatroniCluster(baseDir, runAs, etcdPid, etcdPort, []);
    try {
      await until(() => httpJson('GET', etcdPort, '/health'), 20_000, 'etcd up');
      for (const name of ['pa0', 'pa1', 'pa2']) {
        const node = await cluster.writeConfig(name, tags[name] ?? {});
        cluster.nodes.push(node);
        node.pid = spawnServer(findBinary('patroni', ['/usr/bin']), [node.configFile], runAs, openSync(join(baseDir, `${name}.log`), 'a'));
        // The first one bootstraps alone, so the others do not race it for initdb.
        if (name === 'pa0') await until(async () => (await cluster.leader()) ?? Promise.reject(new Error('no leader')), 60_000, 'Patroni bootstrap');
      }
      await cluster.waitHealthy(90_000);
      const leader = (await cluster.leader())!;
      for (const sql of ["CREATE ROLE app LOGIN PASSWORD 'app'", 'GRANT pg_read_all_stats TO app', 'CREATE DATABASE app OWNER app']) await cluster.query(leader, sql);
      await cluster.query(leader, 'CREATE EXTENSION pg_stat_statements', 'app');
      for (const n of cluster.nodes) {
        await until(async () => {
          await cluster.query(n.name, 'SELECT 1 FROM pg_stat_statements LIMIT 1', 'app');
        }, 30_000, `app database on ${n.name}`);
      }
      return cluster;
    } catch (e) {
      const logs = ['pa0', 'pa1', 'pa2'].map((n) => `--- ${n}.log\n${tail(join(baseDir, `${n}.log`))}`).join('\n');
      await cluster.stopAll();
      throw new Error(`${(e as Error).message}\n${logs}`);
    }
  }

  node(name: string): PatroniNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** Patroni's GET /cluster, asked of the first instance that answers. */
  async clusterView(): Promise<{ members: { name: string; role: string; state: string; tags?: Record<string, unknown> }[] }> {
    for (const n of this.nodes) {
      try {
        return (await httpJson('GET', n.apiPort, '/cluster')) as { members: { name: string; role: string; state: string }[] };
      } catch {
        // try the next one
      }
    }
    throw new Error('no Patroni REST API answers');
  }

  async leader(): Promise<string | null> {
    try {
      const v = await this.clusterView();
      return v.members.find((m) => m.role === 'leader' && m.state === 'running')?.name ?? null;
    } catch {
      return null;
    }
  }

  /** A leader and every other member streaming (or running as a replica). */
  async waitHealthy(timeoutMs: number): Promise<void> {
    await until(async () => {
      const v = await this.clusterView();
      const leaders = v.members.filter((m) => m.role === 'leader' && m.state === 'running');
      const replicas = v.members.filter((m) => m.role !== 'leader' && (m.state === 'streaming' || m.state === 'running'));
      if (leaders.length !== 1 || replicas.length !== this.nodes.length - 1) throw new Error(JSON.stringify(v.members));
    }, timeoutMs, 'Patroni cluster healthy', 200);
  }

  /** POST /switchover to the leader's REST API: Patroni demotes it and promotes `candidate`. */
  async switchover(leader: string, candidate: string): Promise<void> {
    await httpJson('POST', this.node(leader).apiPort, '/switchover', { leader, candidate });
  }

  async query<R extends Record<string, unknown> = Record<string, unknown>>(node: string, sql: string, database = 'postgres'): Promise<R[]> {
    const n = this.node(node);
    const c = new pg.Client({ host: n.host, port: n.port, user: 'postgres', password: 'postgres', database });
    await c.connect();
    try {
      return (await c.query<R>(sql)).rows;
    } finally {
      await c.end();
    }
  }

  /** Stops Patroni (which stops its PostgreSQL) and etcd, kills leftovers, removes the temp dir. */
  async stopAll(): Promise<void> {
    const pids = () => {
      const out = [...this.nodes.map((n) => n.pid), this.etcdPid];
      for (const n of this.nodes) {
        const file = join(n.dataDir, 'postmaster.pid');
        if (existsSync(file)) out.push(Number(readFileSync(file, 'utf8').split('\n')[0]));
      }
      return out.filter((p) => p > 0);
    };
    const all = pids();
    await stopOrKill(
      async () => {
        for (const n of this.nodes) if (isAlive(n.pid)) process.kill(n.pid, 'SIGTERM');
        for (let i = 0; i < 200 && this.nodes.some((n) => isAlive(n.pid)); i++) await sleep(50);
        if (isAlive(this.etcdPid)) process.kill(this.etcdPid, 'SIGTERM');
      },
      all,
      this.baseDir,
      15_000,
    );
  }

  private async writeConfig(name: string, tags: Record<string, boolean>): Promise<PatroniNode> {
    const port = await freePort();
    const apiPort = await freePort();
    const dataDir = join(this.baseDir, name);
    const sock = join(this.baseDir, `${name}-sock`);
    mkdirSync(sock);
    if (this.runAs.uid !== undefined) chownSync(sock, this.runAs.uid, this.runAs.gid!);
    const configFile = join(this.baseDir, `${name}.yml`);
    const tagLines = Object.entries(tags).map(([k, v]) => `  ${k}: ${v}`);
    writeFileSync(
      configFile,
      [
        'scope: switchyard-test',
        `name: ${name}`,
        'log: { level: WARNING }',
        `restapi: { listen: "127.0.0.1:${apiPort}", connect_address: "127.0.0.1:${apiPort}" }`,
        `etcd3: { hosts: "127.0.0.1:${this.etcdPort}" }`,
        'bootstrap:',
        '  dcs:',
        '    ttl: 20',
        '    loop_wait: 1',
        '    retry_timeout: 5',
        '    maximum_lag_on_failover: 1048576',
        '    postgresql:',
        '      use_pg_rewind: false',
        '      parameters: { wal_level: replica, hot_standby: "on", max_wal_senders: 10, max_replication_slots: 10, wal_keep_size: 64MB }',
        '  initdb: [ { encoding: UTF8 }, { locale: C }, no-sync ]',
        '  pg_hba:',
        '    - local all all trust',
        '    - local replication all trust',
        '    - host replication replicator 127.0.0.1/32 scram-sha-256',
        '    - host all all 127.0.0.1/32 scram-sha-256',
        'postgresql:',
        `  listen: "127.0.0.1:${port}"`,
        `  connect_address: "127.0.0.1:${port}"`,
        `  data_dir: ${dataDir}`,
        `  bin_dir: ${PG_DIRS[0]}`,
        `  pgpass: ${join(this.baseDir, `${name}.pgpass`)}`,
        '  authentication:',
        '    superuser: { username: postgres, password: postgres }',
        '    replication: { username: replicator, password: replicator }',
        '  parameters:',
        `    unix_socket_directories: "${sock}"`,
        '    shared_preload_libraries: pg_stat_statements',
        '    pg_stat_statements.track: all',
        '    fsync: "off"',
        '    synchronous_commit: "off"',
        '    full_page_writes: "off"',
        '    shared_buffers: 32MB',
        '    max_connections: 100',
        ...(tagLines.length ? ['tags:', ...tagLines] : []),
        '',
      ].join('\n'),
    );
    if (this.runAs.uid !== undefined) chownSync(configFile, this.runAs.uid, this.runAs.gid!);
    return { name, host: '127.0.0.1', port, apiPort, dataDir, configFile, pid: 0, tags };
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

/** One JSON request to 127.0.0.1:port; rejects on non-2xx. */
export function httpJson(method: string, port: number, path: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, path, method, headers: data ? { 'content-type': 'application/json' } : {}, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 500) >= 300) return reject(new Error(`${method} ${path}: HTTP ${res.statusCode}: ${text}`));
        try {
          resolve(text ? JSON.parse(text) : null);
        } catch {
          resolve(text);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end(data);
  });
}
