import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isContainersInfo, loopbackContainer, MariaContainers, PgContainers, type ContainerRefs, type MariaContainersInfo, type PgContainersInfo } from '../../support/containers.js';

/*
 * No Docker engine runs here, so the containers backend's building (testcontainers) cannot run.
 * What can: its controls against a fake engine (a node HTTP server on a Unix socket that keeps
 * a state per container and answers like the Docker API), and the port binding it asks
 * testcontainers for. The fake answers what the real API documents: 204 done, 304 already
 * in that state, 409 kill of a stopped container.
 */

interface FakeContainer {
  running: boolean;
  paused: boolean;
  pid: number;
  labels: Record<string, string>;
}

let dir: string;
let socketPath: string;
let server: http.Server;
const containers = new Map<string, FakeContainer>();
const asked: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-fake-engine-'));
  socketPath = join(dir, 'docker.sock');
  server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://engine');
    asked.push(`${req.method} ${url.pathname}${url.search}`);
    const send = (status: number, body?: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(body === undefined ? '' : JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === '/containers/json') {
      const want = (JSON.parse(url.searchParams.get('filters') ?? '{}') as { label?: string[] }).label ?? [];
      const list = [...containers].filter(([, c]) => want.every((l) => { const [k, v] = l.split('='); return c.labels[k!] === v; }));
      return send(200, list.map(([id, c]) => ({ Id: id, Labels: c.labels })));
    }
    const m = /^\/(containers|networks)\/([^/]+)(?:\/(\w+))?$/.exec(url.pathname);
    if (!m) return send(404, { message: 'no route' });
    const [, kind, id, action] = m;
    if (kind === 'networks') return send(req.method === 'DELETE' ? 204 : 404);
    const c = containers.get(id!);
    if (!c) return send(404, { message: `No such container: ${id}` });
    if (req.method === 'GET' && action === 'json') return send(200, { Id: id, State: { Running: c.running, Paused: c.paused, Pid: c.running ? c.pid : 0 } });
    if (req.method === 'DELETE' && !action) {
      containers.delete(id!);
      return send(204);
    }
    if (req.method !== 'POST') return send(404);
    switch (action) {
      case 'stop':
        if (!c.running) return send(304);
        c.running = false;
        return send(204);
      case 'start':
        if (c.running) return send(304);
        c.running = true;
        return send(204);
      case 'kill':
        if (!c.running) return send(409, { message: 'is not running' });
        c.running = false;
        return send(204);
      case 'pause':
        c.paused = true;
        return send(204);
      case 'unpause':
        c.paused = false;
        return send(204);
    }
    return send(404);
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  containers.clear();
  asked.length = 0;
});

function refs(ids: Record<string, string>): ContainerRefs {
  return { backend: 'containers', engine: { kind: 'unix', path: socketPath }, clusterId: 'c-1', networkId: 'net-1', ids };
}

function pgInfo(): PgContainersInfo {
  return {
    kind: 'postgres',
    baseDir: mkdtempSync(join(tmpdir(), 'switchyard-containers-pg-')),
    binDir: '/usr/lib/postgresql/15/bin',
    runAs: {},
    nodes: ['pg0', 'pg1'].map((name, i) => ({ name, host: '127.0.0.1', port: 1, role: i === 0 ? 'primary' : 'replica', dataDir: '/var/lib/postgresql/data', socketDir: '/var/run/postgresql' })),
    users: { superuser: { user: 'postgres', password: 'postgres' }, app: { user: 'app', password: 'app' } },
    database: 'app',
    containers: refs({ pg0: 'id-pg0', pg1: 'id-pg1' }),
  };
}

function addContainer(id: string, pid: number, labels: Record<string, string> = { 'switchyard.test.cluster': 'c-1' }): void {
  containers.set(id, { running: true, paused: false, pid, labels });
}

describe('the containers backend controls (against a fake engine)', () => {
  it('an info of the containers backend is told apart from a local one', () => {
    const info = pgInfo();
    expect(isContainersInfo(info)).toBe(true);
    const { containers: _refs, ...local } = info;
    expect(isContainersInfo(local)).toBe(false);
    expect(() => PgContainers.attach(local)).toThrow('not an info of the containers backend');
    rmSync(info.baseDir, { recursive: true, force: true });
  });

  it('stop, kill and start are container stop / kill -s KILL / start; repeated ones are no-ops', async () => {
    addContainer('id-pg0', 1);
    addContainer('id-pg1', 1);
    const cluster = PgContainers.attach(pgInfo());
    // The server check after a start needs a real server: stand in for it.
    let readyChecks = 0;
    (cluster as unknown as { ready: () => Promise<void> }).ready = async () => {
      readyChecks++;
    };
    await cluster.stop('pg1');
    expect(containers.get('id-pg1')!.running).toBe(false);
    await cluster.stop('pg1'); // 304: already stopped
    await cluster.start('pg1');
    expect(containers.get('id-pg1')!.running).toBe(true);
    expect(readyChecks).toBe(1);
    await cluster.kill('pg1');
    expect(containers.get('id-pg1')!.running).toBe(false);
    await cluster.kill('pg1'); // 409: not running
    await cluster.freeze('pg0');
    expect(containers.get('id-pg0')!.paused).toBe(true);
    await cluster.thaw('pg0');
    expect(containers.get('id-pg0')!.paused).toBe(false);
    expect(asked.filter((a) => a.startsWith('POST'))).toEqual([
      'POST /containers/id-pg1/stop?t=30',
      'POST /containers/id-pg1/stop?t=30',
      'POST /containers/id-pg1/start',
      'POST /containers/id-pg1/kill?signal=SIGKILL',
      'POST /containers/id-pg1/kill?signal=SIGKILL',
      'POST /containers/id-pg0/pause',
      'POST /containers/id-pg0/unpause',
    ]);
    await cluster.stopAll();
  });

  it('an engine error is an error naming the request and the status', async () => {
    const cluster = PgContainers.attach(pgInfo());
    await expect(cluster.stop('pg0')).rejects.toThrow('Docker engine: POST /containers/id-pg0/stop?t=30 answered 404: {"message":"No such container: id-pg0"}');
    await expect(cluster.stop('pg9')).rejects.toThrow('no container for node pg9');
    await cluster.stopAll();
  });

  describe('pid()', () => {
    // pid() asks the engine synchronously (from a child process, blocking this one), so this
    // fake engine must run in a process of its own: it serves fixed container states.
    let fakeServer: ChildProcess;
    let engine: ChildProcess;
    let enginePath: string;
    beforeAll(async () => {
      // A process whose command line reads like a server's (argv[0] "postgres-mariadbd-fake").
      fakeServer = spawn('bash', ['-c', 'exec -a postgres-mariadbd-fake sleep 60'], { stdio: 'ignore' });
      enginePath = join(dir, 'static-engine.sock');
      const states = {
        'id-server': { Running: true, Pid: fakeServer.pid },
        'id-not-a-server': { Running: true, Pid: process.pid }, // a pid of this kernel that is not a server
        'id-stopped': { Running: false, Pid: 0 },
      };
      const script = `
        const http = require('node:http');
        const states = ${JSON.stringify(states)};
        http.createServer((req, res) => {
          const [, kind, id, what] = req.url.split('/');
          const s = kind === 'containers' && what === 'json' ? states[id] : undefined;
          res.writeHead(s ? 200 : 404);
          res.end(JSON.stringify(s ? { State: s } : { message: 'No such container' }));
        }).listen(process.argv[1], () => console.log('listening'));`;
      engine = spawn(process.execPath, ['-e', script, enginePath], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((resolve, reject) => {
        engine.stdout!.once('data', resolve);
        engine.once('exit', (code) => reject(new Error(`the fake engine exited (${code})`)));
      });
    });
    afterAll(() => {
      fakeServer.kill('SIGKILL');
      engine.kill('SIGKILL');
    });

    it('is the host pid when it runs the server, null when stopped, unknown, or not a server on this kernel', () => {
      const info = pgInfo();
      const names = ['server', 'not-a-server', 'stopped', 'missing'];
      info.nodes = names.map((name) => ({ ...info.nodes[0]!, name }));
      info.containers = { ...refs(Object.fromEntries(names.map((n) => [n, `id-${n}`]))), engine: { kind: 'unix', path: enginePath } };
      const cluster = PgContainers.attach(info);
      const t0 = performance.now();
      expect(cluster.pid('server')).toBe(fakeServer.pid);
      expect(performance.now() - t0).toBeLessThan(2000);
      expect(cluster.pid('not-a-server')).toBeNull();
      expect(cluster.pid('stopped')).toBeNull();
      expect(cluster.pid('missing')).toBeNull();
      expect(cluster.pids()).toEqual([fakeServer.pid]);
      rmSync(info.baseDir, { recursive: true, force: true });
    });
  });

  it('stopAll removes the containers by id and by label (one whose start failed half-way), the network and the record dir; never throws', async () => {
    addContainer('id-pg0', 1);
    addContainer('id-pg1', 1);
    addContainer('id-half-started', 1);
    addContainer('id-other-cluster', 1, { 'switchyard.test.cluster': 'c-2' });
    const info = pgInfo();
    const cluster = PgContainers.attach(info);
    await cluster.stopAll();
    expect([...containers.keys()]).toEqual(['id-other-cluster']);
    expect(asked).toContain('DELETE /networks/net-1');
    expect(existsSync(info.baseDir)).toBe(false);
    // The engine gone: still no throw.
    const goneInfo: PgContainersInfo = { ...pgInfo(), containers: { ...refs({ pg0: 'x' }), engine: { kind: 'unix', path: join(dir, 'missing.sock') } } };
    const gone = PgContainers.attach(goneInfo);
    await expect(gone.stopAll()).resolves.toBeUndefined();
  });

  it('MariaContainers has the same controls (stop/start/kill through the engine)', async () => {
    addContainer('id-my1', 1);
    const info: MariaContainersInfo = {
      kind: 'mysql',
      baseDir: mkdtempSync(join(tmpdir(), 'switchyard-containers-maria-')),
      binDir: '/usr/sbin',
      nodes: [{ name: 'my1', host: '127.0.0.1', port: 1, role: 'replica', dataDir: '/var/lib/mysql', socket: '/run/mysqld/mysqld.sock', cnf: '/etc/mysql/my.cnf' }],
      users: { superuser: { user: 'root', password: 'root' }, app: { user: 'app', password: 'app' } },
      database: 'app',
      containers: refs({ my1: 'id-my1' }),
    };
    const cluster = MariaContainers.attach(info);
    await cluster.kill('my1');
    expect(containers.get('id-my1')!.running).toBe(false);
    expect(await cluster.lagBytes('my1').catch((e: Error) => e.message)).toMatch(/ECONNREFUSED|connect/);
    await cluster.stopAll();
    expect(containers.size).toBe(0);
  });
});

describe('the port binding asked of testcontainers', () => {
  it('publishes the fixed host port on 127.0.0.1 only', async () => {
    const tc = await import('testcontainers');
    const c = loopbackContainer(tc, 'postgres:15').withExposedPorts({ container: 5432, host: 24567 });
    const internals = c as unknown as { beforeContainerCreated(): Promise<void>; hostConfig: { PortBindings: Record<string, { HostIp?: string; HostPort: string }[]> } };
    await internals.beforeContainerCreated();
    expect(internals.hostConfig.PortBindings).toEqual({ '5432/tcp': [{ HostIp: '127.0.0.1', HostPort: '24567' }] });
  });

  it('the testcontainers API the backend builds with exists in the installed version', async () => {
    const tc = await import('testcontainers');
    expect(typeof tc.GenericContainer).toBe('function');
    expect(typeof tc.Network).toBe('function');
    expect(typeof tc.Wait.forListeningPorts).toBe('function');
    const proto = tc.GenericContainer.prototype as unknown as Record<string, unknown>;
    for (const m of ['withNetwork', 'withNetworkAliases', 'withLabels', 'withCopyContentToContainer', 'withExposedPorts', 'withWaitStrategy', 'withStartupTimeout', 'withEnvironment', 'withCommand', 'withEntrypoint', 'start']) {
      expect(typeof proto[m], m).toBe('function');
    }
  });
});
