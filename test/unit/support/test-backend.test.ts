import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { chooseTestBackend, dockerEndpoint, dockerReachable, probeDocker, type DockerProbe } from '../../support/test-backend.js';

const up: DockerProbe = { reachable: true, endpoint: '/var/run/docker.sock', detail: 'answered /_ping' };
const down: DockerProbe = { reachable: false, endpoint: '/var/run/docker.sock', detail: 'no such socket' };

describe('chooseTestBackend', () => {
  // [SWITCHYARD_TEST_BACKEND, engine answers?, expected backend, probe called?]
  const table: [string | undefined, boolean, 'local' | 'containers', boolean][] = [
    ['local', true, 'local', false],
    ['local', false, 'local', false],
    ['containers', true, 'containers', true],
    [undefined, true, 'containers', true],
    [undefined, false, 'local', true],
    ['', true, 'containers', true],
    ['', false, 'local', true],
    ['detect', true, 'containers', true],
    ['detect', false, 'local', true],
    [' DETECT ', false, 'local', true],
    ['Local', true, 'local', false],
  ];
  it.each(table)('SWITCHYARD_TEST_BACKEND=%j, engine up: %s -> %s (probed: %s)', async (value, engine, expected, probed) => {
    const probe = vi.fn(async () => (engine ? up : down));
    const choice = await chooseTestBackend({ SWITCHYARD_TEST_BACKEND: value }, probe);
    expect(choice.backend).toBe(expected);
    expect(probe).toHaveBeenCalledTimes(probed ? 1 : 0);
  });

  it('detect without an engine says where it looked (the setup logs this)', async () => {
    const choice = await chooseTestBackend({}, async () => down);
    expect(choice.reason).toBe('no Docker engine at /var/run/docker.sock: no such socket');
  });

  it('containers without an engine fails, naming the endpoint and the way out', async () => {
    await expect(chooseTestBackend({ SWITCHYARD_TEST_BACKEND: 'containers' }, async () => down)).rejects.toThrow(
      /SWITCHYARD_TEST_BACKEND=containers, but no Docker engine answers \(\/var\/run\/docker\.sock: no such socket\).*SWITCHYARD_TEST_BACKEND=local/,
    );
  });

  it.each(['docker', 'podman', 'true', 'auto'])('an unknown value (%s) fails without probing', async (value) => {
    const probe = vi.fn(async () => up);
    await expect(chooseTestBackend({ SWITCHYARD_TEST_BACKEND: value }, probe)).rejects.toThrow(`SWITCHYARD_TEST_BACKEND=${value}: use local, containers or detect`);
    expect(probe).not.toHaveBeenCalled();
  });
});

describe('dockerEndpoint', () => {
  it.each([
    [undefined, { kind: 'unix', path: '/var/run/docker.sock' }],
    ['', { kind: 'unix', path: '/var/run/docker.sock' }],
    ['unix:///run/user/1000/docker.sock', { kind: 'unix', path: '/run/user/1000/docker.sock' }],
    ['tcp://127.0.0.1:2375', { kind: 'tcp', host: '127.0.0.1', port: 2375 }],
    ['tcp://127.3.4.5', { kind: 'tcp', host: '127.3.4.5', port: 2375 }],
    ['tcp://localhost:2376', { kind: 'tcp', host: '127.0.0.1', port: 2376 }],
  ])('DOCKER_HOST=%j', (value, expected) => {
    expect(dockerEndpoint({ DOCKER_HOST: value })).toEqual(expected);
  });

  it.each(['tcp://10.1.2.3:2375', 'tcp://128.0.0.1:2375', 'tcp://127.0.0.256:2375', 'tcp://docker.example.com:2375', 'ssh://me@host', 'npipe:////./pipe/docker_engine', 'unix://'])(
    'DOCKER_HOST=%s is refused',
    (value) => {
      expect(dockerEndpoint({ DOCKER_HOST: value }).kind).toBe('refused');
    },
  );
});

describe('dockerReachable / probeDocker', () => {
  const cleanups: (() => void | Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    vi.restoreAllMocks();
  });

  function tempSocket(): string {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-fake-docker-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return join(dir, 'docker.sock');
  }

  /** A fake engine on a Unix socket; `handler` answers every request. Returns the socket path and the paths it was asked for. */
  async function fakeEngine(handler: http.RequestListener): Promise<{ path: string; asked: string[] }> {
    const path = tempSocket();
    const asked: string[] = [];
    const server = http.createServer((req, res) => {
      asked.push(`${req.method} ${req.url}`);
      handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    return { path, asked };
  }

  it('(a) a missing socket: false at once', async () => {
    const t0 = performance.now();
    const probe = await probeDocker({ DOCKER_HOST: `unix://${tempSocket()}` });
    const ms = performance.now() - t0;
    expect(probe).toMatchObject({ reachable: false, detail: 'no such socket' });
    expect(ms).toBeLessThan(100);
  });

  it('(a) the default socket path is probed when DOCKER_HOST is unset', async () => {
    const probe = await probeDocker({});
    expect(probe.endpoint).toBe('/var/run/docker.sock');
  });

  it('(b) a fake engine answering GET /_ping with 200 OK: true', async () => {
    const engine = await fakeEngine((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('OK');
    });
    expect(await dockerReachable({ DOCKER_HOST: `unix://${engine.path}` })).toBe(true);
    expect(engine.asked).toEqual(['GET /_ping']);
  });

  it('(c) an engine answering 500: false', async () => {
    const engine = await fakeEngine((_req, res) => {
      res.writeHead(500);
      res.end('OK');
    });
    const probe = await probeDocker({ DOCKER_HOST: `unix://${engine.path}` });
    expect(probe).toMatchObject({ reachable: false, detail: '/_ping answered 500 "OK"' });
  });

  it('(c) 200 with another body (not an engine): false', async () => {
    const engine = await fakeEngine((_req, res) => res.end('hello'));
    expect(await dockerReachable({ DOCKER_HOST: `unix://${engine.path}` })).toBe(false);
  });

  it('(c) an engine that never answers: false within the timeout', async () => {
    const engine = await fakeEngine(() => {
      // Accepts the request and never answers.
    });
    const t0 = performance.now();
    const probe = await probeDocker({ DOCKER_HOST: `unix://${engine.path}` }, 300);
    const ms = performance.now() - t0;
    expect(probe).toMatchObject({ reachable: false, detail: 'no answer to /_ping within 300ms' });
    expect(engine.asked).toEqual(['GET /_ping']);
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(800);
  });

  it('(c) an engine that sends headers and then stalls: false within the default ~1s timeout', async () => {
    const engine = await fakeEngine((_req, res) => {
      res.writeHead(200);
      res.write('O');
    });
    const t0 = performance.now();
    expect(await dockerReachable({ DOCKER_HOST: `unix://${engine.path}` })).toBe(false);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(990);
    expect(ms).toBeLessThan(1500);
  });

  it('(d) DOCKER_HOST=tcp://10.1.2.3:2375: false without connecting anywhere', async () => {
    // Mocked, not only spied on: even a broken probe must not reach a non-loopback address.
    const connect = vi.spyOn(net, 'createConnection').mockImplementation(() => {
      throw new Error('must not connect');
    });
    const request = vi.spyOn(http, 'request').mockImplementation(() => {
      throw new Error('must not connect');
    });
    const t0 = performance.now();
    const probe = await probeDocker({ DOCKER_HOST: 'tcp://10.1.2.3:2375' });
    expect(performance.now() - t0).toBeLessThan(20);
    expect(probe).toEqual({ reachable: false, endpoint: 'DOCKER_HOST=tcp://10.1.2.3:2375', detail: 'not contacted: not a 127.0.0.0/8 address (tests connect to loopback only)' });
    expect(request).not.toHaveBeenCalled();
    expect(connect).not.toHaveBeenCalled();
  });

  it('a loopback tcp:// engine is probed over TCP', async () => {
    const server = http.createServer((_req, res) => res.end('OK'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = server.address() as net.AddressInfo;
    expect(await dockerReachable({ DOCKER_HOST: `tcp://127.0.0.1:${port}` })).toBe(true);
  });
});
