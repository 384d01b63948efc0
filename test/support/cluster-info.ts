import type { PgClusterInfo, PgNodeInfo } from '../../src/devcluster/pg.js';
import type { MariaClusterInfo, MariaNodeInfo } from '../../src/devcluster/mariadb.js';

/*
 * The plain-JSON descriptions of the test clusters that global-setup.ts hands
 * to test workers (vitest `provide`/`inject`), and what tests derive from them.
 */
export type { PgClusterInfo, PgNodeInfo, MariaClusterInfo, MariaNodeInfo };

export type ClusterInfo = PgClusterInfo | MariaClusterInfo;

/** Which of the cluster's users to connect as. */
export type ClusterUser = 'superuser' | 'app';

/** Everything a TCP client needs to reach one node (pg.Client and mysql2 both accept these keys). */
export interface ConnectionInfo {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

/** TCP connection settings for `node` as `as` (default: the superuser) in the `app` database. */
export function connectionInfoOf(info: ClusterInfo, node: string, as: ClusterUser = 'superuser'): ConnectionInfo {
  const n = info.nodes.find((x) => x.name === node);
  if (!n) throw new Error(`no node ${node} in the ${info.kind} cluster (nodes: ${info.nodes.map((x) => x.name).join(', ')})`);
  const u = info.users[as];
  return { host: n.host, port: n.port, user: u.user, password: u.password, database: info.database };
}
