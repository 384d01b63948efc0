import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TestProject } from 'vitest/node';
import setup from '../../support/global-setup.js';

/*
 * The integration project's global setup, up to its backend choice: the failures must come
 * before any server or container starts, and say what to do. (Its local path is exercised by
 * every integration run; the containers path needs a Docker engine, which this machine lacks.)
 */

let dir: string;
const saved = { ...process.env };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-setup-'));
});
afterEach(() => {
  process.env = { ...saved };
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

function fakeProject(): { project: TestProject; provide: ReturnType<typeof vi.fn> } {
  const provide = vi.fn();
  return { project: { provide } as unknown as TestProject, provide };
}

describe('global setup: backend choice', () => {
  it('SWITCHYARD_TEST_BACKEND=containers without a Docker engine fails at once, naming the socket and the way out', async () => {
    process.env.SWITCHYARD_TEST_BACKEND = 'containers';
    process.env.DOCKER_HOST = `unix://${join(dir, 'docker.sock')}`;
    const { project, provide } = fakeProject();
    const t0 = performance.now();
    await expect(setup(project)).rejects.toThrow(
      `SWITCHYARD_TEST_BACKEND=containers, but no Docker engine answers (${join(dir, 'docker.sock')}: no such socket); start one, point DOCKER_HOST at it (unix:// or tcp://127.x.x.x), or use SWITCHYARD_TEST_BACKEND=local`,
    );
    expect(performance.now() - t0).toBeLessThan(500);
    expect(provide).not.toHaveBeenCalled();
  });

  it('SWITCHYARD_TEST_BACKEND=containers with a remote DOCKER_HOST fails without contacting it', async () => {
    process.env.SWITCHYARD_TEST_BACKEND = 'containers';
    process.env.DOCKER_HOST = 'tcp://10.1.2.3:2375';
    // Mocked: even a broken probe must not reach a non-loopback address.
    const request = vi.spyOn(http, 'request').mockImplementation(() => {
      throw new Error('must not connect');
    });
    const { project } = fakeProject();
    await expect(setup(project)).rejects.toThrow('(DOCKER_HOST=tcp://10.1.2.3:2375: not contacted: not a 127.0.0.0/8 address');
    expect(request).not.toHaveBeenCalled();
  });

  it('an unknown SWITCHYARD_TEST_BACKEND fails before anything starts', async () => {
    process.env.SWITCHYARD_TEST_BACKEND = 'docker';
    const { project, provide } = fakeProject();
    await expect(setup(project)).rejects.toThrow('SWITCHYARD_TEST_BACKEND=docker: use local, containers or detect');
    expect(provide).not.toHaveBeenCalled();
  });
});
