import mysql from 'mysql2/promise';
import type { MysqlBackendSocket } from '../../src/backend/mysql/connect.js';
import { MysqlResponseScanner, framePacket, type ResponseKind } from '../../src/protocol/mysql/index.js';
import { MariaCluster, type MariaClusterInfo } from '../support/mariadb-cluster.js';
import { startProxy, type RunningProxy } from '../support/proxy.js';

/*
 * Shared by the mysql-proxy*.test.ts files: a proxy in front of the MariaDB
 * test cluster, clients through it, and per-node counters read at the backends.
 */

/** The user the routing tests log in as: its own, so per-user server counters see only the test's statements. */
export const PROBE_USER = { user: 'sy_probe', password: 'sy_probe_pw' };

export async function startMysqlProxy(info: MariaClusterInfo, opts: { weights?: Record<string, number>; clusterYaml?: string; readOnlyListener?: boolean; healthInterval?: string } = {}): Promise<RunningProxy> {
  return startProxy({
    protocol: 'mysql',
    nodes: info.nodes,
    user: info.users.app,
    moreUsers: [PROBE_USER],
    weights: opts.weights,
    clusterYaml: opts.clusterYaml,
    readOnlyListener: opts.readOnlyListener,
    healthInterval: opts.healthInterval,
  });
}

/**
 * Creates the probe user on the primary (replicated to the replicas) and turns
 * on MariaDB's per-user statistics on every node (userstat).
 */
export async function prepareProbeUser(info: MariaClusterInfo): Promise<void> {
  const cluster = MariaCluster.attach(info);
  await cluster.query(
    'my0',
    `CREATE USER IF NOT EXISTS '${PROBE_USER.user}'@'%' IDENTIFIED BY '${PROBE_USER.password}'; ` +
      `GRANT ALL PRIVILEGES ON ${info.database}.* TO '${PROBE_USER.user}'@'%'; GRANT PROCESS ON *.* TO '${PROBE_USER.user}'@'%'`,
  );
  await cluster.waitForReplication();
  for (const n of info.nodes) await cluster.query(n.name, 'SET GLOBAL userstat = 1');
}

export interface NodeCounters {
  /** SHOW GLOBAL STATUS Com_select / Com_insert (every user, the monitor's probes included). */
  comSelect: number;
  comInsert: number;
  /** information_schema.USER_STATISTICS of the probe user: exactly what its sessions ran on the node. */
  userSelects: number;
  userUpdates: number;
}

export async function nodeCounters(info: MariaClusterInfo): Promise<Record<string, NodeCounters>> {
  const cluster = MariaCluster.attach(info);
  const out: Record<string, NodeCounters> = {};
  for (const n of info.nodes) {
    const status = await cluster.query<{ Variable_name: string; Value: string }>(n.name, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_select', 'Com_insert')");
    const get = (name: string) => Number(status.find((r) => r.Variable_name === name)?.Value ?? 0);
    const [u] = await cluster.query<{ SELECT_COMMANDS: number; UPDATE_COMMANDS: number }>(
      n.name,
      `SELECT SELECT_COMMANDS, UPDATE_COMMANDS FROM information_schema.USER_STATISTICS WHERE USER = '${PROBE_USER.user}'`,
    );
    out[n.name] = { comSelect: get('Com_select'), comInsert: get('Com_insert'), userSelects: Number(u?.SELECT_COMMANDS ?? 0), userUpdates: Number(u?.UPDATE_COMMANDS ?? 0) };
  }
  return out;
}

export function delta(before: Record<string, NodeCounters>, after: Record<string, NodeCounters>, field: keyof NodeCounters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(after)) out[k] = after[k]![field] - (before[k]?.[field] ?? 0);
  return out;
}

export function connectThrough(proxy: RunningProxy, user: { user: string; password: string }, extra: mysql.ConnectionOptions = {}): Promise<mysql.Connection> {
  return mysql.createConnection({ host: '127.0.0.1', port: proxy.port, user: user.user, password: user.password, database: 'app', ...extra });
}

/** @@server_id -> node name, read from each node directly. */
export async function serverIds(info: MariaClusterInfo): Promise<Map<number, string>> {
  const cluster = MariaCluster.attach(info);
  const out = new Map<number, string>();
  for (const n of info.nodes) {
    const [r] = await cluster.query<{ id: number }>(n.name, 'SELECT @@server_id AS id');
    out.set(Number(r!.id), n.name);
  }
  return out;
}

/** The node that ran `SELECT @@server_id` through `c` (as this connection routes it). */
export async function whichNode(c: mysql.Connection, ids: Map<number, string>, sql = 'SELECT @@server_id AS id'): Promise<string> {
  const [rows] = await c.query<mysql.RowDataPacket[]>(sql);
  return ids.get(Number(rows[0]!.id)) ?? `unknown(${rows[0]!.id})`;
}

/** Sends one command on a raw connection and returns the payloads of its answer. */
export function rawCommand(c: MysqlBackendSocket, payload: Buffer, deprecateEof: boolean, kind: ResponseKind): Promise<Buffer[]> {
  const scanner = new MysqlResponseScanner(deprecateEof);
  scanner.begin(kind);
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const onData = (chunk: Buffer) => {
      try {
        for (const p of c.reader.push(chunk)) {
          out.push(Buffer.from(p.payload));
          if (scanner.next(p.payload).kind === 'done') {
            c.socket.removeListener('data', onData);
            resolve(out);
          }
        }
      } catch (e) {
        reject(e);
      }
    };
    c.socket.on('data', onData);
    c.socket.write(framePacket(payload, 0).bytes);
  });
}

