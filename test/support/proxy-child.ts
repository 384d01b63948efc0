import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { freeTcpPort } from './proxy.js';

/*
 * The proxy in a child process of its own (the CLI from the sources via tsx), for tests that
 * measure the proxy's memory: in the test's process the RSS would count the test's own
 * clients and buffers too.
 */

/** VmRSS of a process, in bytes. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

export interface ProxyChild {
  /** The cluster's client port. */
  port: number;
  pid: number;
  /** SIGTERM, wait for the exit, remove the config dir. */
  stop(): Promise<void>;
}

type ProxyChildOptions = Parameters<typeof startProxyChild>[0];

/**
 * startProxyChild in the calling suite's beforeAll (bounded by `startTimeoutMs`), stopped in
 * its afterAll; the tests read the child's port and pid from the returned object.
 */
export function proxyChildForSuite(opts: ProxyChildOptions, startTimeoutMs = 40_000): { readonly port: number; readonly pid: number } {
  let child: ProxyChild | null = null;
  beforeAll(async () => {
    child = await startProxyChild(opts);
  }, startTimeoutMs);
  afterAll(async () => {
    await child?.stop();
  });
  const started = () => {
    if (!child) throw new Error('the proxy child has not started (beforeAll failed?)');
    return child;
  };
  return {
    get port() {
      return started().port;
    },
    get pid() {
      return started().pid;
    },
  };
}

/**
 * 1. a config with one cluster `main` (health checks every 250ms, log level warn) on free ports;
 * 2. `node --import tsx src/cli.ts start -c <config> --no-watch`;
 * 3. wait up to 30s for the admin /readyz to answer 200, else stop it and fail with its stderr.
 */
export async function startProxyChild(opts: {
  protocol: 'postgres' | 'mysql';
  nodes: { name: string; host: string; port: number }[];
  user: { user: string; password: string };
  /** Prefix of the temp dir that holds the config. */
  dirPrefix: string;
}): Promise<ProxyChild> {
  const dir = mkdtempSync(join(tmpdir(), opts.dirPrefix));
  const port = await freeTcpPort();
  const adminPort = await freeTcpPort();
  const configPath = join(dir, 'switchyard.yaml');
  const nodes = opts.nodes.map((n) => `      - { name: ${n.name}, host: ${n.host}, port: ${n.port} }`).join('\n');
  writeFileSync(
    configPath,
    `admin:\n  listen: 127.0.0.1:${adminPort}\nlog:\n  level: warn\nclusters:\n  - name: main\n    protocol: ${opts.protocol}\n    listen: 127.0.0.1:${port}\n    nodes:\n${nodes}\n    users:\n      - { name: ${opts.user.user}, password: "${opts.user.password}" }\n    health:\n      interval: 250ms\n`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', '-c', configPath, '--no-watch'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const ready = async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => null))?.status === 200;
  for (const deadline = Date.now() + 30_000; Date.now() < deadline && child.exitCode === null; ) {
    if (await ready()) return { port, pid: child.pid!, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  if (await ready()) return { port, pid: child.pid!, stop };
  await stop();
  throw new Error(`proxy child not ready: ${stderr}`);
}
