import { Com, buildErr, buildOk } from '../../protocol/mysql/index.js';
import type { MysqlBackendConn } from '../../backend/mysql/conn.js';
import type { MysqlSession } from './session.js';

/**
 * `KILL [QUERY | CONNECTION] n` and COM_PROCESS_KILL, where n is a proxy
 * connection id (what clients see as their thread id): the target session's
 * backend thread is killed on its node; KILL CONNECTION also closes that client.
 */
export async function killCommand(s: MysqlSession, target: number, queryOnly: boolean, seq: number): Promise<void> {
  const victim = s.runtime.session(target);
  if (!victim) return s.reply(buildErr({ errno: 1094, sqlState: 'HY000', message: `Unknown thread id: ${target}` }), seq);
  if (victim === s && !queryOnly) {
    s.reply(buildErr({ errno: 1927, sqlState: '70100', message: 'Connection was killed' }), seq);
    return s.quit();
  }
  if (queryOnly) await victim.killQuery();
  else await victim.killConnection();
  s.reply(buildOk({ status: s.status() }), seq);
}

/** Runs `KILL ... <thread id>` on the node of `conn`, over another pooled connection of the same key. */
export async function killOnNode(s: MysqlSession, conn: MysqlBackendConn, sql: string): Promise<void> {
  const { conn: killer, pool } = await s.runtime.acquire(conn.node, s.id.key, (c) => c !== conn);
  try {
    await killer.command(Buffer.concat([Buffer.from([Com.QUERY]), Buffer.from(sql)]));
    pool.release(killer);
  } catch (e) {
    pool.discard(killer);
    throw e;
  }
}
