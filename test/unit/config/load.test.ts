import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { loadConfigText } from '../../../src/config/load.js';
import { configJsonSchema } from '../../../src/config/json-schema.js';
import { DEFAULTS, parseListenAddress } from '../../../src/config/schema.js';
import { parseDuration, parseSize } from '../../../src/config/units.js';
import { minimalYaml, repoRoot } from './fixtures.js';

const ms = (d: string) => (parseDuration(d) as { ms: number }).ms;
const bytes = (s: string) => (parseSize(s) as { bytes: number }).bytes;

describe('defaults', () => {
  const r = loadConfigText(minimalYaml, { env: {} });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  const { config } = r;
  const cluster = config.clusters[0]!;

  it('fills every optional top-level section from DEFAULTS', () => {
    expect(config.admin).toEqual({ listen: '127.0.0.1:9190', token: '' });
    expect(config.log).toEqual({ level: 'info', format: 'json' });
    expect(config.limits).toEqual({ max_client_connections: 10000, max_message_size: 64 * 1024 ** 2, auth_timeout: 10_000, client_idle_timeout: 0 });
  });

  it('fills every optional cluster section with the documented values', () => {
    expect(cluster.nodes.map((n) => n.weight)).toEqual([1, 1]);
    expect(cluster.roles).toBe('auto');
    expect(cluster.backend_tls).toEqual({ mode: 'disable' });
    expect(cluster.tls).toBeUndefined();
    expect(cluster.listen_read_only).toBeUndefined();
    expect(cluster.discovery).toBeUndefined();
    expect(cluster.pool).toEqual({ mode: 'transaction', size: 20, min_idle: 0, acquire_timeout: 5000, idle_timeout: 60_000, prepared_statements: 256, connect_timeout: 5000 });
    expect(cluster.users.every((u) => u.auth === 'scram-sha-256')).toBe(true);
    expect(cluster.routing).toEqual({
      primary_reads: 0,
      max_replica_lag: { bytes: 16 * 1024 ** 2, time: 1000 },
      when_no_replica: 'primary',
      consistency: 'causal',
      write_functions: [],
      read_functions: [],
    });
    expect(cluster.health).toEqual({ interval: 250, timeout: 1000, fall: 3, rise: 2 });
    expect(cluster.failover).toEqual({ write_hold: 10_000 });
  });

  it('the values applied are the ones DEFAULTS lists (one source for docs and schema)', () => {
    expect(config.limits.max_message_size).toBe(bytes(DEFAULTS.limits.max_message_size));
    expect(cluster.pool.idle_timeout).toBe(ms(DEFAULTS.pool.idle_timeout));
    expect(cluster.routing.max_replica_lag.bytes).toBe(bytes(DEFAULTS.routing.max_replica_lag.bytes));
    expect(cluster.health.interval).toBe(ms(DEFAULTS.health.interval));
    expect(cluster.failover.write_hold).toBe(ms(DEFAULTS.failover.write_hold));
  });

  it('default lists are fresh per load (a caller mutating one cannot leak into the next)', () => {
    cluster.routing.write_functions.push('mutated');
    const again = loadConfigText(minimalYaml, { env: {} });
    expect(again.ok && again.config.clusters[0]!.routing.write_functions).toEqual([]);
  });

  it('hashes the file text', () => {
    expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);
    const other = loadConfigText(`${minimalYaml}# comment\n`, { env: {} });
    expect(other.ok && other.sha256).not.toBe(r.sha256);
  });
});

describe('values', () => {
  it('accepts units and numbers for durations and sizes', () => {
    const text = `limits: { max_message_size: 1048576, auth_timeout: 1500 }\n${minimalYaml}    health: { interval: 2s, timeout: 1.5s }\n`;
    const r = loadConfigText(text, { env: {} });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.config.limits.max_message_size).toBe(1024 ** 2);
    expect(r.config.limits.auth_timeout).toBe(1500);
    expect(r.config.clusters[0]!.health).toMatchObject({ interval: 2000, timeout: 1500 });
  });

  it('tls with mode disable needs no cert; roles may name the primary', () => {
    const r = loadConfigText(`${minimalYaml}    tls: { mode: disable }\n    roles: { primary: pg2 }\n`, { env: {} });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.config.clusters[0]!.tls).toEqual({ cert: '', key: '', mode: 'disable' });
    expect(r.config.clusters[0]!.roles).toEqual({ primary: 'pg2' });
  });

  it('IPv6 listen addresses', () => {
    expect(parseListenAddress('[::1]:6432')).toEqual({ ok: true, host: '::1', port: 6432 });
    expect(parseListenAddress(':6432')).toEqual({ ok: true, host: '', port: 6432 });
    expect(parseListenAddress('::1:6432').ok).toBe(false);
    expect(parseListenAddress('[::1]:65536')).toEqual({ ok: false, message: 'port 65536 must be between 1 and 65535' });
    const r = loadConfigText(minimalYaml.replace('127.0.0.1:6432', '"[::1]:6432"'), { env: {} });
    expect(r.ok && r.config.clusters[0]!.listen).toBe('[::1]:6432');
  });

  it('the same port on two different hosts is fine', () => {
    const r = loadConfigText(minimalYaml.replace('    nodes:', '    listen_read_only: 127.0.0.2:6432\n    nodes:'), { env: {} });
    expect(r.ok ? 'ok' : r.problems).toBe('ok');
  });

  it('an empty file asks for clusters at line 1', () => {
    expect(loadConfigText('', { env: {} })).toEqual({ ok: false, problems: [{ path: 'clusters', line: 1, message: 'is required' }] });
  });

  it('a second YAML document is refused', () => {
    const r = loadConfigText(`${minimalYaml}---\nlog: {}\n`, { env: {} });
    expect(r.ok ? 'ok' : r.problems).toEqual([{ path: '', line: 10, message: 'a config file holds one YAML document (found a second "---")' }]);
  });

  it('the contract layout loads: ${VAR} unquoted inside a flow map', () => {
    const text = minimalYaml.replace('password: secret', 'password: ${APP_PASSWORD}').replace('port: 5433 }', 'port: 5433, weight: 2 }');
    const r = loadConfigText(text, { env: { APP_PASSWORD: 'from-env' } });
    expect(r.ok && r.config.clusters[0]!.users[0]!.password).toBe('from-env');
  });
});

describe('the example file', () => {
  const text = readFileSync(new URL('config/switchyard.example.yaml', repoRoot), 'utf8');

  it('validates with an empty environment', () => {
    const r = loadConfigText(text, { env: {} });
    expect(r.ok ? 'ok' : r.problems).toBe('ok');
  });

  it('takes the environment where it uses ${VAR:-default}', () => {
    const r = loadConfigText(text, { env: { APP_PASSWORD: 'pw1', SWITCHYARD_ADMIN_TOKEN: 'tok' } });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    expect(r.config.admin.token).toBe('tok');
    expect(r.config.clusters[0]!.users[0]!.password).toBe('pw1');
  });

  it('is plain YAML that any tool reads, and sets every key the schema knows', () => {
    const inSchema = schemaKeyPaths(JSON.parse(configJsonSchema()) as JsonSchema, '');
    const inExample = docKeyPaths(parseYaml(text) as unknown, '');
    expect(inSchema.size).toBeGreaterThan(50);
    expect([...inSchema].filter((k) => !inExample.has(k))).toEqual([]);
    expect([...inExample].filter((k) => !inSchema.has(k))).toEqual([]);
  });
});

describe('JSON Schema', () => {
  it('the committed config/switchyard.schema.json is fresh (regenerate: npx tsx scripts/gen-schema.ts)', () => {
    const committed = readFileSync(new URL('config/switchyard.schema.json', repoRoot), 'utf8');
    expect(committed).toBe(configJsonSchema());
  });

  it('is strict and takes durations as strings on the input side', () => {
    const schema = JSON.parse(configJsonSchema()) as { additionalProperties: boolean; properties: { limits: { properties: { auth_timeout: { type: string[] } } } } };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.limits.properties.auth_timeout.type).toEqual(['string', 'number']);
  });
});

interface JsonSchema {
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
}

/** Every key path the JSON Schema allows, lists written as `[]`: `clusters[].nodes[].weight`. */
function schemaKeyPaths(schema: JsonSchema, prefix: string, out = new Set<string>()): Set<string> {
  for (const [key, sub] of Object.entries(schema.properties ?? {})) {
    out.add(prefix + key);
    schemaKeyPaths(sub, `${prefix}${key}.`, out);
  }
  if (schema.items) schemaKeyPaths(schema.items, `${prefix.slice(0, -1)}[].`, out);
  for (const branch of schema.anyOf ?? []) schemaKeyPaths(branch, prefix, out);
  return out;
}

/** Every key path a parsed YAML document sets, in the same notation. */
function docKeyPaths(value: unknown, prefix: string, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) docKeyPaths(item, `${prefix.slice(0, -1)}[].`, out);
  else if (value !== null && typeof value === 'object') {
    for (const [key, sub] of Object.entries(value)) {
      out.add(prefix + key);
      docKeyPaths(sub, `${prefix}${key}.`, out);
    }
  }
  return out;
}

describe('problem wording', () => {
  it('never echoes a password, and says to quote a number where a string belongs', () => {
    const r = loadConfigText(minimalYaml.replace('password: secret', 'password: 271828'), { env: {} });
    expect(r.ok ? 'ok' : r.problems).toEqual([{ path: 'clusters[0].users[0].password', line: 9, message: 'expected a string, got a number (quote it)' }]);
  });

  it('lists problems in file order', () => {
    const r = loadConfigText(minimalYaml.replace('port: 5433', 'port: 0').replace('protocol: postgres', 'protocol: x').replace('name: pg2', 'name: pg1'), { env: {} });
    const lines = r.ok ? [] : r.problems.map((p) => p.line!);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  });

  it('refuses an alias bomb instead of expanding it', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(', ')}]`)].join('\n');
    const r = loadConfigText(bomb, { env: {} });
    expect(r.ok ? 'ok' : r.problems).toEqual([{ path: '', line: 1, message: expect.stringMatching(/alias/i) }]);
  });
});
