import pg from 'pg';

/** The shape of inject('pgCluster') that these helpers need. */
export interface PgInfoLike {
  nodes: { name: string; host: string; port: number }[];
  users: { superuser: { user: string; password: string }; app: { user: string; password: string } };
  database: string;
}

export async function superClient(info: PgInfoLike, node: string, database = 'postgres'): Promise<pg.Client> {
  const n = info.nodes.find((x) => x.name === node);
  if (!n) throw new Error(`no node ${node}`);
  const c = new pg.Client({ host: n.host, port: n.port, user: info.users.superuser.user, password: info.users.superuser.password, database });
  await c.connect();
  return c;
}

/** A direct connection (not through the proxy) as the app user, e.g. to create test tables it owns. */
export async function appClient(info: PgInfoLike, node: string, database: string): Promise<pg.Client> {
  const n = info.nodes.find((x) => x.name === node);
  if (!n) throw new Error(`no node ${node}`);
  const c = new pg.Client({ host: n.host, port: n.port, user: info.users.app.user, password: info.users.app.password, database });
  await c.connect();
  return c;
}

/** pg_stat_statements_reset() on every node (replicas included: it is a function, not a write). */
export async function resetStatementStats(info: PgInfoLike): Promise<void> {
  for (const n of info.nodes) {
    const c = await superClient(info, n.name, info.database);
    try {
      await c.query('SELECT pg_stat_statements_reset()');
    } finally {
      await c.end();
    }
  }
}

/**
 * Calls per node of statements whose normalized text contains `prefix` (so a
 * leading hint comment does not hide it),
 * as counted by pg_stat_statements on that node: where they really ran.
 */
export async function nodeStatementCalls(info: PgInfoLike, prefix: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const n of info.nodes) {
    const c = await superClient(info, n.name, info.database);
    try {
      const r = await c.query<{ calls: string | null }>(
        'SELECT sum(calls)::bigint AS calls FROM pg_stat_statements WHERE query LIKE $1',
        [`%${prefix.replace(/[\\%_]/g, (m) => `\\${m}`)}%`],
      );
      out[n.name] = Number(r.rows[0]?.calls ?? 0);
    } finally {
      await c.end();
    }
  }
  return out;
}
