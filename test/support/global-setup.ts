import net from 'node:net';
import type { TestProject } from 'vitest/node';
import { MariaCluster, type MariaClusterInfo } from './mariadb-cluster.js';
import { PgCluster, type PgClusterInfo } from './pg-cluster.js';
import { cleanLeftovers } from './reaper.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgCluster: PgClusterInfo;
    mariaCluster: MariaClusterInfo;
  }
}

/**
 * vitest globalSetup of the `integration` project:
 *   1. check the backend (SWITCHYARD_TEST_BACKEND, default `local`);
 *   2. clean what a killed earlier run left behind;
 *   3. start PostgreSQL (pg0 + 2 streaming replicas) and MariaDB (my0 + 2 GTID
 *      replicas) in parallel from the machine's server binaries;
 *   4. provide their infos to the test workers;
 *   5. the returned teardown stops both.
 * An interrupted run (exit, SIGINT, SIGTERM) still ends every server: see reaper.ts.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await checkBackend(process.env.SWITCHYARD_TEST_BACKEND ?? 'local');
  const cleaned = cleanLeftovers();
  if (cleaned > 0) console.log(`[test clusters] cleaned ${cleaned} cluster dir(s) left by an interrupted run`);

  const startedAt = Date.now();
  const [pg, maria] = await Promise.allSettled([PgCluster.start({ replicas: 2 }), MariaCluster.start({ replicas: 2 })]);
  const stopAll = async () => {
    await Promise.all([pg, maria].map((r) => (r.status === 'fulfilled' ? r.value.stopAll() : undefined)));
  };
  if (pg.status === 'rejected' || maria.status === 'rejected') {
    await stopAll();
    const failures = [pg, maria].flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error)?.message ?? r.reason)] : []));
    throw new Error(`cannot start the test clusters: ${failures.join('; ')}`);
  }

  const list = (c: PgCluster | MariaCluster) => c.info.nodes.map((n) => `${n.name}:${n.port}`).join(' ');
  console.log(`[test clusters] PostgreSQL ${list(pg.value)}, MariaDB ${list(maria.value)} started in ${Date.now() - startedAt}ms`);
  project.provide('pgCluster', pg.value.info);
  project.provide('mariaCluster', maria.value.info);
  return stopAll;
}

/** `local` runs the machine's binaries; `containers` would need a Docker engine and is not built yet. */
async function checkBackend(backend: string): Promise<void> {
  if (backend === 'local') return;
  if (backend !== 'containers') throw new Error(`SWITCHYARD_TEST_BACKEND=${backend}: use local (the default) or containers`);
  const socket = dockerSocketPath();
  if (socket === null) {
    throw new Error(`SWITCHYARD_TEST_BACKEND=containers: DOCKER_HOST=${process.env.DOCKER_HOST} is not a Unix socket, and the containers backend is not implemented yet; use SWITCHYARD_TEST_BACKEND=local`);
  }
  throw new Error(
    (await canConnect(socket))
      ? `SWITCHYARD_TEST_BACKEND=containers: a Docker engine answers at ${socket}, but the containers backend is not implemented yet; use SWITCHYARD_TEST_BACKEND=local`
      : `SWITCHYARD_TEST_BACKEND=containers: no Docker engine is reachable at ${socket}; use SWITCHYARD_TEST_BACKEND=local (the machine's PostgreSQL and MariaDB binaries)`,
  );
}

/** The Docker engine's Unix socket (DOCKER_HOST=unix://... or the default), or null when DOCKER_HOST is not a socket. */
function dockerSocketPath(): string | null {
  const host = process.env.DOCKER_HOST;
  if (!host) return '/var/run/docker.sock';
  return host.startsWith('unix://') ? host.slice('unix://'.length) : null;
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.setTimeout(2000);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}
