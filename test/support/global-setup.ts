import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { PgCluster, type PgClusterInfo } from './pg-cluster.js';
import { MariaCluster, type MariaClusterInfo } from './mariadb-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgCluster: PgClusterInfo;
    mariaCluster: MariaClusterInfo;
  }
}

/**
 * Starts one PostgreSQL (primary + 2 streaming replicas) and one MariaDB
 * (primary + 2 GTID replicas) cluster for the integration tests, in parallel,
 * and always stops them: after the run, and on SIGINT/SIGTERM/exit.
 * SWITCHYARD_TEST_BACKEND=local (the default here) uses the machine's server
 * binaries; `containers` needs a Docker engine, which these machines lack.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const backend = process.env.SWITCHYARD_TEST_BACKEND ?? 'local';
  if (backend !== 'local') {
    throw new Error(`SWITCHYARD_TEST_BACKEND=${backend}: only the local backend is implemented (no Docker engine is reachable on these machines)`);
  }
  const started = Date.now();
  const [pg, maria] = await Promise.allSettled([PgCluster.start({ replicas: 2 }), MariaCluster.start({ replicas: 2 })]);
  const clusters = [pg, maria].flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stopAll = async () => {
    await Promise.all(clusters.map((c) => c.stopAll().catch(() => undefined)));
  };
  if (pg.status === 'rejected' || maria.status === 'rejected') {
    await stopAll();
    throw (pg.status === 'rejected' ? pg.reason : (maria as PromiseRejectedResult).reason) as Error;
  }
  // Best effort for interrupted runs: kill the servers by pid, synchronously.
  const pids = () => [...pg.value.info.nodes.map((n) => pg.value.pid(n.name)), ...maria.value.info.nodes.map((n) => maria.value.pid(n.name))].filter((p): p is number => p !== null);
  writeFileSync(join(tmpdir(), `switchyard-test-servers-${process.pid}.pids`), pids().join('\n'));
  const killNow = () => {
    for (const pid of pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  };
  process.once('exit', killNow);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killNow();
      process.exit(130);
    });
  }
  console.log(`[test clusters] PostgreSQL ${pg.value.info.nodes.map((n) => `${n.name}:${n.port}`).join(' ')}, MariaDB ${maria.value.info.nodes.map((n) => `${n.name}:${n.port}`).join(' ')} started in ${Date.now() - started}ms`);
  project.provide('pgCluster', pg.value.info);
  project.provide('mariaCluster', maria.value.info);
  return async () => {
    await stopAll();
    process.removeListener('exit', killNow);
  };
}
