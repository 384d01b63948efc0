import http from 'node:http';

/*
 * Which servers the integration tests run against (SWITCHYARD_TEST_BACKEND):
 *   local       the machine's PostgreSQL and MariaDB binaries (pg-cluster.ts, mariadb-cluster.ts);
 *   containers  Docker containers through testcontainers (containers.ts);
 *   detect      (also: unset) containers when a Docker engine answers, else local.
 * The decision (chooseTestBackend) is separate from the probe (probeDocker) so the
 * decision table is unit-testable without an engine, and `local` never probes at all.
 */

export type TestBackend = 'local' | 'containers';

export interface BackendChoice {
  backend: TestBackend;
  /** Why, for the setup's log line, e.g. "no Docker engine at /var/run/docker.sock". */
  reason: string;
}

/** What a probe of the Docker engine found. Never an exception: a failure is `reachable: false`. */
export interface DockerProbe {
  reachable: boolean;
  /** Where it looked: a socket path, host:port, or the DOCKER_HOST value it refused to use. */
  endpoint: string;
  /** Why it is (not) reachable, in words for the log. */
  detail: string;
}

/** Where the Docker engine is, from DOCKER_HOST (the Docker CLI's own rule) or the default socket. */
export type DockerEndpoint =
  | { kind: 'unix'; path: string }
  | { kind: 'tcp'; host: string; port: number }
  /** A DOCKER_HOST we must not or cannot connect to (not loopback, ssh://, npipe://, garbage). */
  | { kind: 'refused'; value: string; why: string };

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
/** Long enough for an idle local engine (answers /_ping in a few ms), short enough not to slow a run. */
export const DEFAULT_PROBE_TIMEOUT_MS = 1000;

/**
 * The backend for this run:
 *   1. SWITCHYARD_TEST_BACKEND=local: local, the probe is not called;
 *   2. =containers: containers, or an error naming the endpoint when no engine answers;
 *   3. unset, empty or `detect`: containers when the probe finds an engine, else local;
 *   4. anything else: an error listing the accepted values.
 * `dockerProbe` is called at most once.
 */
export async function chooseTestBackend(
  env: Readonly<Record<string, string | undefined>>,
  dockerProbe: () => Promise<DockerProbe>,
): Promise<BackendChoice> {
  const raw = env.SWITCHYARD_TEST_BACKEND;
  const value = (raw ?? '').trim().toLowerCase();
  if (value === 'local') return { backend: 'local', reason: 'SWITCHYARD_TEST_BACKEND=local' };
  if (value === 'containers') {
    const probe = await dockerProbe();
    if (!probe.reachable) {
      throw new Error(
        `SWITCHYARD_TEST_BACKEND=containers, but no Docker engine answers (${probe.endpoint}: ${probe.detail}); ` +
          'start one, point DOCKER_HOST at it (unix:// or tcp://127.x.x.x), or use SWITCHYARD_TEST_BACKEND=local',
      );
    }
    return { backend: 'containers', reason: `SWITCHYARD_TEST_BACKEND=containers, Docker engine at ${probe.endpoint}` };
  }
  if (value === '' || value === 'detect') {
    const probe = await dockerProbe();
    return probe.reachable
      ? { backend: 'containers', reason: `Docker engine at ${probe.endpoint}` }
      : { backend: 'local', reason: `no Docker engine at ${probe.endpoint}: ${probe.detail}` };
  }
  throw new Error(`SWITCHYARD_TEST_BACKEND=${raw}: use local, containers or detect (the default: containers when a Docker engine answers, else local)`);
}

/** 127.0.0.0/8 as a dotted quad, or `localhost`: the only TCP engines the network rule allows. */
function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

/** DOCKER_HOST as the Docker CLI reads it: unset means the default Unix socket. */
export function dockerEndpoint(env: Readonly<Record<string, string | undefined>>): DockerEndpoint {
  const value = env.DOCKER_HOST?.trim();
  if (!value) return { kind: 'unix', path: DEFAULT_DOCKER_SOCKET };
  if (value.startsWith('unix://')) {
    const path = value.slice('unix://'.length);
    return path ? { kind: 'unix', path } : { kind: 'refused', value, why: 'no socket path after unix://' };
  }
  if (value.startsWith('tcp://')) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return { kind: 'refused', value, why: 'not a valid tcp:// address' };
    }
    const host = url.hostname;
    // Tests talk to 127.0.0.0/8 only: a remote engine is never contacted, not even probed.
    if (!isLoopbackHost(host)) return { kind: 'refused', value, why: 'not a 127.0.0.0/8 address (tests connect to loopback only)' };
    return { kind: 'tcp', host: host === 'localhost' ? '127.0.0.1' : host, port: url.port ? Number(url.port) : 2375 };
  }
  return { kind: 'refused', value, why: 'only unix:// and tcp:// engines are supported' };
}

function describe(e: DockerEndpoint): string {
  if (e.kind === 'unix') return e.path;
  if (e.kind === 'tcp') return `tcp://${e.host}:${e.port}`;
  return `DOCKER_HOST=${e.value}`;
}

/**
 * Asks the engine `GET /_ping` (it answers 200 "OK"), over its Unix socket or loopback TCP.
 * Resolves within `timeoutMs` whatever happens: a missing socket fails at once (ENOENT),
 * an engine that hangs or answers anything else counts as unreachable.
 */
export function probeDocker(
  env: Readonly<Record<string, string | undefined>> = process.env,
  timeoutMs = DEFAULT_PROBE_TIMEOUT_MS,
): Promise<DockerProbe> {
  const endpoint = dockerEndpoint(env);
  const where = describe(endpoint);
  if (endpoint.kind === 'refused') return Promise.resolve({ reachable: false, endpoint: where, detail: `not contacted: ${endpoint.why}` });
  return new Promise<DockerProbe>((resolve) => {
    let settled = false;
    const finish = (reachable: boolean, detail: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ reachable, endpoint: where, detail });
    };
    const target = endpoint.kind === 'unix' ? { socketPath: endpoint.path } : { host: endpoint.host, port: endpoint.port };
    // agent: false, so no keep-alive socket outlives the probe and holds the process open.
    const req = http.request({ ...target, method: 'GET', path: '/_ping', agent: false, headers: { Connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 64) body += chunk;
      });
      res.on('end', () => {
        if (res.statusCode === 200 && body.trim() === 'OK') finish(true, 'answered /_ping');
        else finish(false, `/_ping answered ${res.statusCode} ${JSON.stringify(body.slice(0, 40))}`);
      });
      res.on('error', (e: Error) => finish(false, e.message));
    });
    // One timer for the whole exchange: a server that accepts and then never answers (or
    // sends headers and stalls) still ends the probe on time.
    const timer = setTimeout(() => finish(false, `no answer to /_ping within ${timeoutMs}ms`), timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => finish(false, e.code === 'ENOENT' ? 'no such socket' : (e.code ?? e.message)));
    req.end();
  });
}

/** True when a Docker engine answers /_ping within `timeoutMs`. Never throws. */
export async function dockerReachable(env: Readonly<Record<string, string | undefined>> = process.env, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<boolean> {
  return (await probeDocker(env, timeoutMs)).reachable;
}
