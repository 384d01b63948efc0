import { ErrorCodes, SwitchyardError, isSwitchyardError } from '../../errors.js';
import { Com } from '../../protocol/mysql/index.js';
import type { MysqlClusterRuntime, MysqlPoolKey } from '../../runtime/mysql-cluster.js';
import { MysqlServerError } from './errors.js';

/**
 * Borrows a connection with the client's key from a node that is up (the
 * primary first) and selects the database there: an unknown database or a
 * user the nodes refuse fails the login with the server's own error.
 */
export async function checkBackend(runtime: MysqlClusterRuntime, key: MysqlPoolKey, database: string | null): Promise<void> {
  const snap = runtime.snapshot();
  const candidates = [...snap.nodes].filter((n) => n.up).sort((a, b) => Number(b.name === snap.primary) - Number(a.name === snap.primary));
  let lastError: unknown = new SwitchyardError(ErrorCodes.BACKEND_CONNECT_FAILED, `no node of cluster ${runtime.name} is reachable`);
  for (const node of candidates) {
    let borrowed;
    try {
      borrowed = await runtime.acquire(node.name, key, (c) => c.db === database);
    } catch (e) {
      lastError = e;
      if (isSwitchyardError(e) && e.code === ErrorCodes.BACKEND_AUTH_FAILED) break;
      continue;
    }
    const { conn, pool } = borrowed;
    try {
      if (database !== null && conn.db !== database) {
        const end = await conn.command(Buffer.concat([Buffer.from([Com.INIT_DB]), Buffer.from(database, 'utf8')]));
        if (end.error) throw new MysqlServerError(end.last);
        conn.db = database;
      }
      pool.release(conn);
      return;
    } catch (e) {
      if (e instanceof MysqlServerError) {
        pool.release(conn);
        throw e;
      }
      pool.discard(conn);
      lastError = e;
    }
  }
  throw lastError;
}
