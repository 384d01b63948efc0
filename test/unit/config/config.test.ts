import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText, formatProblem } from '../../../src/config/load.js';
import { runCheck } from '../../../src/config/check.js';
import { configJsonSchema } from '../../../src/config/json-schema.js';
import { expandEnv } from '../../../src/config/env.js';
import { formatDuration, formatSize, parseDuration, parseSize } from '../../../src/config/units.js';

const root = new URL('../../../', import.meta.url);

/** A valid minimal config; line numbers below refer to this layout. */
const valid = `clusters:
  - name: main
    protocol: postgres
    listen: 127.0.0.1:6432
    nodes:
      - { name: pg1, host: 127.0.0.1, port: 5432 }
      - { name: pg2, host: 127.0.0.1, port: 5433 }
    users:
      - { name: app, password: secret }
`;

describe('units', () => {
  it.each([
    ['250ms', 250],
    ['10s', 10_000],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['0', 0],
    ['0s', 0],
    ['1.5s', 1500],
    [300, 300],
  ])('duration %s = %s ms', (text, ms) => expect(parseDuration(text)).toEqual({ ok: true, ms }));
  it.each(['10', '5x', '-1s', 's', '', '1 day'])('bad duration %s', (text) => expect(parseDuration(text).ok).toBe(false));
  it.each([
    ['512kB', 512 * 1024],
    ['16MB', 16 * 1024 ** 2],
    ['1GB', 1024 ** 3],
    ['100B', 100],
    ['100', 100],
  ])('size %s = %s bytes', (text, bytes) => expect(parseSize(text)).toEqual({ ok: true, bytes }));
  it.each(['16XB', 'MB', '-1MB', 'lots'])('bad size %s', (text) => expect(parseSize(text).ok).toBe(false));
  it('round-trips durations and sizes (property)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 10 ** 9 }), (n) => {
      expect(parseDuration(formatDuration(n))).toEqual({ ok: true, ms: n });
      expect(parseSize(formatSize(n))).toEqual({ ok: true, bytes: n });
    }));
  });
});

describe('env expansion', () => {
  const env = { A: 'x', EMPTY: '' };
  it.each([
    ['${A}', 'x'],
    ['pre-${A}-post', 'pre-x-post'],
    ['${B:-dflt}', 'dflt'],
    ['${EMPTY:-dflt}', 'dflt'],
    ['${A:-dflt}', 'x'],
    ['$$A', '$A'],
    ['cost $5', 'cost $5'],
    ['${B:-}', ''],
  ])('%s -> %s', (text, want) => expect(expandEnv(text, env)).toEqual({ ok: true, value: want }));
  it('an unset variable without default names the variable', () => {
    expect(expandEnv('${NOPE}', env)).toEqual({ ok: false, message: expect.stringContaining('NOPE') });
  });
  it('expanded values cannot inject YAML', () => {
    const r = loadConfigText(valid.replace('secret', '"${P}"'), { env: { P: 'x\n  evil: 1' } });
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.config.clusters[0]!.users[0]!.password).toBe('x\n  evil: 1');
  });
});

describe('loading', () => {
  it('applies every default', () => {
    const r = loadConfigText(valid, { env: {} });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.admin).toEqual({ listen: '127.0.0.1:9190', token: '' });
    expect(r.config.limits).toEqual({ max_client_connections: 10000, max_message_size: 64 * 1024 ** 2, auth_timeout: 10_000, client_idle_timeout: 0 });
    const c = r.config.clusters[0]!;
    expect(c.nodes[0]!.weight).toBe(1);
    expect(c.roles).toBe('auto');
    expect(c.pool).toEqual({ mode: 'transaction', size: 20, min_idle: 0, acquire_timeout: 5000, idle_timeout: 60_000 });
    expect(c.routing).toEqual({ primary_reads: 0, max_replica_lag: { bytes: 16 * 1024 ** 2, time: 1000 }, when_no_replica: 'primary', consistency: 'causal', write_functions: [], read_functions: [] });
    expect(c.health).toEqual({ interval: 250, timeout: 1000, fall: 3, rise: 2 });
    expect(c.failover).toEqual({ write_hold: 10_000 });
    expect(c.backend_tls).toEqual({ mode: 'disable' });
    expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('validates the commented example file', () => {
    const text = readFileSync(new URL('config/switchyard.example.yaml', root), 'utf8');
    const r = loadConfigText(text, { env: {} });
    expect(r.ok ? 'ok' : r.problems).toBe('ok');
  });

  it('the committed JSON Schema is fresh (run npm run schema)', () => {
    const committed = readFileSync(new URL('config/switchyard.schema.json', root), 'utf8');
    expect(committed).toBe(configJsonSchema());
  });
});

/** [name, config text, env, expected path, expected line, message fragment] */
const broken: [string, string, Record<string, string>, string, number, RegExp][] = [
  ['invalid YAML', valid.replace('protocol: postgres', 'protocol: [postgres'), {}, '', 4, /./], // the parser notices the unclosed [ on the next line
  ['unknown key', valid.replace('    users:', '    userz: 1\n    users:'), {}, 'clusters[0].userz', 8, /unknown key/],
  ['bad duration', valid + '    health:\n      interval: 5x\n', {}, 'clusters[0].health.interval', 11, /invalid duration/],
  ['bad size', valid + '    routing:\n      max_replica_lag: { bytes: 16XB }\n', {}, 'clusters[0].routing.max_replica_lag.bytes', 11, /invalid size/],
  ['duplicate node name', valid.replace('name: pg2', 'name: pg1'), {}, 'clusters[0].nodes[1].name', 7, /duplicate node name/],
  ['duplicate listen address', valid.replace('    nodes:', '    listen_read_only: 127.0.0.1:6432\n    nodes:'), {}, 'clusters[0].listen_read_only', 5, /already used/],
  ['port out of range', valid.replace('port: 5433', 'port: 70000'), {}, 'clusters[0].nodes[1].port', 7, /between 1 and 65535/],
  ['listen port out of range', valid.replace('127.0.0.1:6432', '127.0.0.1:0'), {}, 'clusters[0].listen', 4, /between 1 and 65535/],
  ['negative weight', valid.replace('port: 5433 }', 'port: 5433, weight: -2 }'), {}, 'clusters[0].nodes[1].weight', 7, />= 0/],
  ['missing nodes', valid.replace(/    nodes:\n.*\n.*\n/, ''), {}, 'clusters[0].nodes', 2, /required/],
  ['empty nodes', valid.replace(/    nodes:\n.*\n.*\n/, '    nodes: []\n'), {}, 'clusters[0].nodes', 5, /at least one node/],
  ['roles.primary naming no node', valid + '    roles: { primary: pg9 }\n', {}, 'clusters[0].roles.primary', 10, /not a node/],
  ['unset ${VAR}', valid.replace('secret', '"${APP_PASSWORD}"'), {}, 'clusters[0].users[0].password', 9, /APP_PASSWORD/],
  ['wrong protocol', valid.replace('protocol: postgres', 'protocol: oracle'), {}, 'clusters[0].protocol', 3, /postgres|mysql|Invalid/i],
  ['duplicate cluster name', valid + valid.replace('clusters:\n', '').replace('6432', '7432'), {}, 'clusters[1].name', 10, /duplicate cluster/],
  ['min_idle above size', valid + '    pool:\n      size: 2\n      min_idle: 5\n', {}, 'clusters[0].pool.min_idle', 12, /must not exceed/],
  ['missing users', valid.replace(/    users:\n.*\n/, ''), {}, 'clusters[0].users', 2, /required/],
  ['zero lag budget', valid + '    routing:\n      max_replica_lag: { time: 0s }\n', {}, 'clusters[0].routing.max_replica_lag.time', 11, /greater than 0/],
  ['tls without cert', valid + '    tls: { mode: require }\n', {}, 'clusters[0].tls.cert', 10, /required/],
  ['duplicate YAML key', valid.replace('    protocol: postgres', '    protocol: postgres\n    protocol: mysql'), {}, '', 4, /unique|duplicate/i],
];

describe('broken configs', () => {
  it.each(broken)('%s', (_name, text, env, path, line, message) => {
    const r = loadConfigText(text, { env });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const p = r.problems.find((x) => x.path === path);
    expect(p, JSON.stringify(r.problems)).toBeDefined();
    expect(p!.line).toBe(line);
    expect(p!.message).toMatch(message);
    expect(formatProblem(p!, 'f.yaml')).toMatch(new RegExp(`^f\\.yaml:${line}: `));
  });
});

describe('runCheck (switchyard check)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-check-'));
  it('prints config OK and returns 0 for a valid file', async () => {
    const f = join(dir, 'ok.yaml');
    writeFileSync(f, valid);
    const out: string[] = [];
    expect(await runCheck(f, {}, (l) => out.push(l))).toBe(0);
    expect(out).toEqual(['config OK']);
  });
  it('prints one line per problem with file, line and key path, and returns 1', async () => {
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, valid.replace('port: 5433', 'port: 70000').replace('name: pg2', 'name: pg1'));
    const out: string[] = [];
    expect(await runCheck(f, {}, (l) => out.push(l))).toBe(1);
    expect(out).toEqual([`${f}:7: clusters[0].nodes[1].port: port must be between 1 and 65535`, `${f}:7: clusters[0].nodes[1].name: duplicate node name "pg1" in cluster main`]);
  });
  it('reports a missing file as a problem', async () => {
    const out: string[] = [];
    expect(await runCheck(join(dir, 'none.yaml'), {}, (l) => out.push(l))).toBe(1);
    expect(out[0]).toMatch(/cannot read config file/);
  });
});
