import type { TestProject } from 'vitest/node';
import { MariaCluster, type MariaClusterInfo } from './mariadb-cluster.js';
import { PgCluster, type PgClusterInfo } from './pg-cluster.js';
import { cleanLeftovers } from './reaper.js';
import { chooseTestBackend, probeDocker, type TestBackend } from './test-backend.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgCluster: PgClusterInfo;
    mariaCluster: MariaClusterInfo;
    /** Which backend built the clusters: a test that needs the local one (data dirs, host pids) can skip on `containers`. */
    testBackend: TestBackend;
  }
}

/** What both backends' clusters offer the setup: their info, for the log and the workers, and a teardown. */
interface StartedCluster {
  info: PgClusterInfo | MariaClusterInfo;
  stopAll(): Promise<void>;
}

/**
 * vitest globalSetup of the `integration` project:
 *   1. choose the backend (SWITCHYARD_TEST_BACKEND=local|containers|detect, default detect:
 *      containers only when a Docker engine answers /_ping; a missing socket answers at once);
 *   2. local only: clean what a killed earlier run left behind (containers.ts does its own);
 *   3. start PostgreSQL (pg0 + 2 streaming replicas) and MariaDB (my0 + 2 GTID replicas) in
 *      parallel, from the machine's server binaries or in containers;
 *   4. provide their infos (same shapes for both backends) to the test workers;
 *   5. the returned teardown stops both.
 * An interrupted run (exit, SIGINT, SIGTERM) still ends every server: see reaper.ts, and
 * containers.ts for containers.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const choosing = performance.now();
  const choice = await chooseTestBackend(process.env, () => probeDocker(process.env));
  console.log(`[test clusters] backend: ${choice.backend} (${choice.reason}; chosen in ${Math.round(performance.now() - choosing)}ms)`);

  const startedAt = Date.now();
  let starts: [Promise<StartedCluster>, Promise<StartedCluster>];
  if (choice.backend === 'local') {
    const cleaned = cleanLeftovers();
    if (cleaned > 0) console.log(`[test clusters] cleaned ${cleaned} cluster dir(s) left by an interrupted run`);
    starts = [PgCluster.start({ replicas: 2 }), MariaCluster.start({ replicas: 2 })];
  } else {
    // Loaded only here: a local run never pays for importing testcontainers.
    const { PgContainers, MariaContainers } = await import('./containers.js');
    starts = [PgContainers.start({ replicas: 2 }), MariaContainers.start({ replicas: 2 })];
  }
  const [pg, maria] = await Promise.allSettled(starts);
  const stopAll = async () => {
    await Promise.all([pg, maria].map((r) => (r.status === 'fulfilled' ? r.value.stopAll() : undefined)));
  };
  if (pg.status === 'rejected' || maria.status === 'rejected') {
    await stopAll();
    const failures = [pg, maria].flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error)?.message ?? r.reason)] : []));
    throw new Error(`cannot start the test clusters (${choice.backend} backend): ${failures.join('; ')}`);
  }

  const list = (c: StartedCluster) => c.info.nodes.map((n) => `${n.name}:${n.port}`).join(' ');
  console.log(`[test clusters] PostgreSQL ${list(pg.value)}, MariaDB ${list(maria.value)} started in ${Date.now() - startedAt}ms`);
  project.provide('pgCluster', pg.value.info as PgClusterInfo);
  project.provide('mariaCluster', maria.value.info as MariaClusterInfo);
  project.provide('testBackend', choice.backend);
  return stopAll;
}
