import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { clusterUrl, getJson, PatroniDiscovery } from '../../../src/topology/patroni-fetch.js';
import type { NodeHealth } from '../../../src/topology/decide.js';

/*
 * The fetching side of discovery.patroni against small HTTP servers on
 * 127.0.0.1 (the decisions are in patroni.test.ts, the real Patroni in
 * test/integration/topology-patroni.test.ts).
 */
const CLUSTER = {
  members: [
    { name: 'pa0', role: 'leader', state: 'running', api_url: 'http://127.0.0.1:8008/patroni', host: '127.0.0.1', port: 5432, timeline: 1 },
    { name: 'pa1', role: 'replica', state: 'running', api_url: 'http://127.0.0.1:8009/patroni', host: '127.0.0.1', port: 5433, timeline: 1, lag: 0 },
  ],
};
const NODES = [
  { name: 'a', host: '127.0.0.1', port: 5432 },
  { name: 'b', host: '127.0.0.1', port: 5433 },
];
const HEALTH = new Map<string, NodeHealth>([
  ['a', { up: true, streak: 0, role: 'primary', position: 1n }],
  ['b', { up: true, streak: 0, role: 'replica', position: 1n }],
]);

const servers: net.Server[] = [];
let good: string;
let hung: string;
let garbage: string;
let refused: string;
let huge: string;
const seen: { path: string; auth?: string }[] = [];

async function listen(server: net.Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  good = await listen(
    http.createServer((req, res) => {
      seen.push({ path: req.url!, auth: req.headers.authorization });
      if (req.url === '/cluster' || req.url === '/prefix/cluster') res.end(JSON.stringify(CLUSTER));
      else res.writeHead(404).end('{}');
    }),
  );
  // Accepts the connection, never answers.
  hung = await listen(net.createServer(() => undefined));
  garbage = await listen(http.createServer((_req, res) => res.end('<html>not patroni</html>')));
  // Streams 2 MB of JSON-looking data: more than any /cluster answer.
  huge = await listen(http.createServer((_req, res) => res.end(`{"members":[${'{"name":"x"},'.repeat(170_000)}{"name":"y"}]}`)));
  const tmp = net.createServer();
  refused = await listen(tmp);
  await new Promise<void>((r) => tmp.close(() => r()));
});

afterAll(() => {
  for (const s of servers) s.close();
});

describe('getJson / clusterUrl', () => {
  it('builds /cluster under a base URL with or without a path', () => {
    expect(clusterUrl('http://h:8008').toString()).toBe('http://h:8008/cluster');
    expect(clusterUrl('http://h:8008/').toString()).toBe('http://h:8008/cluster');
    expect(clusterUrl('https://h/prefix').toString()).toBe('https://h/prefix/cluster');
  });
  it('sends URL credentials as Basic auth', async () => {
    const u = new URL(`${good}/prefix/cluster`);
    u.username = 'patroni';
    u.password = 's3cret';
    await expect(getJson(u, 1000)).resolves.toEqual(CLUSTER);
    expect(seen.at(-1)).toEqual({ path: '/prefix/cluster', auth: `Basic ${Buffer.from('patroni:s3cret').toString('base64')}` });
  });
  it('a hung server is cut off at the timeout; HTTP errors and non-JSON reject', async () => {
    await expect(getJson(new URL(`${hung}/cluster`), 150)).rejects.toThrow(/no answer within 150ms/);
    await expect(getJson(new URL(`${good}/nothing`), 1000)).rejects.toThrow(/HTTP 404/);
    await expect(getJson(new URL(`${garbage}/cluster`), 1000)).rejects.toThrow(/not JSON/);
    await expect(getJson(new URL(`${refused}/cluster`), 1000)).rejects.toThrow(/ECONNREFUSED/);
    await expect(getJson(new URL(`${huge}/cluster`), 5000)).rejects.toThrow(/larger than 1048576 bytes/);
  });
});

describe('PatroniDiscovery', () => {
  const log = pino({ level: 'silent' });
  it('tries the URLs in order until one answers, and starts there next time', async () => {
    const d = new PatroniDiscovery([refused, garbage, good], log);
    await d.poll(1000);
    expect(d.decide(NODES, HEALTH)).toMatchObject({ fresh: true, leader: 'a', leaderMember: 'pa0' });
    const before = seen.length;
    await d.poll(1000);
    expect(seen.length).toBe(before + 1);
  });
  it('every URL failing: stale, roles from the probes, the last view kept', async () => {
    const d = new PatroniDiscovery([good], log);
    await d.poll(1000);
    d.setUrls([refused, hung]);
    await d.poll(300);
    const dec = d.decide(NODES, HEALTH);
    expect(dec.fresh).toBe(false);
    expect(dec.notes.join()).toMatch(/unreachable/);
    expect(dec.nodes.get('a')?.member).toBe('pa0');
  });
  it('a hung URL first does not hold the attempt past the timeout', async () => {
    const d = new PatroniDiscovery([hung, good], log);
    await d.poll(200);
    expect(d.decide(NODES, HEALTH).fresh).toBe(false);
    // The failed URL moved the start on: the next attempt asks the good one first.
    await d.poll(1000);
    expect(d.decide(NODES, HEALTH).fresh).toBe(true);
  });
  it('one fetch at a time', async () => {
    const d = new PatroniDiscovery([hung], log);
    const p1 = d.poll(200);
    expect(d.poll(200)).toBe(p1);
    await p1;
  });
});
