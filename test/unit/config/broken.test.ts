import { describe, expect, it } from 'vitest';
import { formatProblem, loadConfigText } from '../../../src/config/load.js';
import { minimalYaml as valid } from './fixtures.js';

interface BrokenCase {
  name: string;
  text: string;
  env?: Record<string, string>;
  path: string;
  line: number;
  message: RegExp;
}

const withPool = (pool: string) => `${valid}    pool:\n${pool}`;

/** Each case breaks the minimal config in one way; `line` is where the fault is in `text`. */
const cases: BrokenCase[] = [
  // The parser notices the unclosed [ only when the next line starts.
  { name: 'invalid YAML', text: valid.replace('protocol: postgres', 'protocol: [postgres'), path: '', line: 4, message: /flow sequence|\]/i },
  { name: 'tab indentation', text: valid.replace('    protocol', '\tprotocol'), path: '', line: 3, message: /tab/i },
  { name: 'duplicate YAML key', text: valid.replace('    protocol: postgres', '    protocol: postgres\n    protocol: mysql'), path: 'clusters[0].protocol', line: 4, message: /^duplicate key "protocol"/ },
  { name: 'unknown top-level key', text: `loggin: {}\n${valid}`, path: 'loggin', line: 1, message: /^unknown key "loggin"$/ },
  { name: 'unknown cluster key', text: valid.replace('    users:', '    userz: 1\n    users:'), path: 'clusters[0].userz', line: 8, message: /^unknown key "userz"$/ },
  { name: 'unknown node key', text: valid.replace('port: 5433 }', 'port: 5433, wieght: 2 }'), path: 'clusters[0].nodes[1].wieght', line: 7, message: /unknown key/ },
  { name: 'bad duration', text: `${valid}    health:\n      interval: 5x\n`, path: 'clusters[0].health.interval', line: 11, message: /invalid duration "5x"/ },
  { name: 'duration without unit', text: `${valid}    failover: { write_hold: "10" }\n`, path: 'clusters[0].failover.write_hold', line: 10, message: /invalid duration "10"/ },
  { name: 'bad size', text: `${valid}    routing:\n      max_replica_lag: { bytes: 16XB }\n`, path: 'clusters[0].routing.max_replica_lag.bytes', line: 11, message: /invalid size "16XB"/ },
  { name: 'duplicate node name', text: valid.replace('name: pg2', 'name: pg1'), path: 'clusters[0].nodes[1].name', line: 7, message: /duplicate node name "pg1"/ },
  { name: 'duplicate listen address', text: valid.replace('    nodes:', '    listen_read_only: 127.0.0.1:6432\n    nodes:'), path: 'clusters[0].listen_read_only', line: 5, message: /already used by clusters\[0\]\.listen/ },
  { name: 'listen clashes with a wildcard', text: valid.replace('    nodes:', '    listen_read_only: 0.0.0.0:6432\n    nodes:'), path: 'clusters[0].listen_read_only', line: 5, message: /already used/ },
  { name: 'cluster listen on the admin address', text: valid.replace('127.0.0.1:6432', '127.0.0.1:9190'), path: 'clusters[0].listen', line: 4, message: /already used by admin\.listen/ },
  { name: 'port out of range', text: valid.replace('port: 5433', 'port: 70000'), path: 'clusters[0].nodes[1].port', line: 7, message: /^must be between 1 and 65535$/ },
  { name: 'listen port out of range', text: valid.replace('127.0.0.1:6432', '127.0.0.1:0'), path: 'clusters[0].listen', line: 4, message: /port 0 must be between 1 and 65535/ },
  { name: 'listen without port', text: valid.replace('127.0.0.1:6432', 'localhost'), path: 'clusters[0].listen', line: 4, message: /expected host:port/ },
  { name: 'negative weight', text: valid.replace('port: 5433 }', 'port: 5433, weight: -2 }'), path: 'clusters[0].nodes[1].weight', line: 7, message: /^must be >= 0$/ },
  { name: 'missing nodes', text: valid.replace(/ {4}nodes:\n.*\n.*\n/, ''), path: 'clusters[0].nodes', line: 2, message: /^is required$/ },
  { name: 'empty nodes', text: valid.replace(/ {4}nodes:\n.*\n.*\n/, '    nodes: []\n'), path: 'clusters[0].nodes', line: 5, message: /at least one node/ },
  { name: 'missing users', text: valid.replace(/ {4}users:\n.*\n/, ''), path: 'clusters[0].users', line: 2, message: /^is required$/ },
  { name: 'roles.primary naming no node', text: `${valid}    roles: { primary: pg9 }\n`, path: 'clusters[0].roles.primary', line: 10, message: /"pg9" is not a node of cluster main/ },
  { name: 'roles neither auto nor a map', text: `${valid}    roles: manual\n`, path: 'clusters[0].roles', line: 10, message: /auto or \{ primary: NODE \}/ },
  { name: 'unset ${VAR}', text: valid.replace('secret', '${APP_PASSWORD}'), path: 'clusters[0].users[0].password', line: 9, message: /APP_PASSWORD is not set/ },
  { name: 'wrong protocol', text: valid.replace('protocol: postgres', 'protocol: oracle'), path: 'clusters[0].protocol', line: 3, message: /^must be postgres \| mysql \(got "oracle"\)$/ },
  { name: 'duplicate cluster name', text: valid + valid.replace('clusters:\n', '').replace('6432', '7432'), path: 'clusters[1].name', line: 10, message: /duplicate cluster name "main"/ },
  { name: 'min_idle > size', text: withPool('      size: 2\n      min_idle: 5\n'), path: 'clusters[0].pool.min_idle', line: 12, message: /min_idle \(5\) must not exceed pool\.size \(2\)/ },
  { name: 'pool.size 0', text: withPool('      size: 0\n'), path: 'clusters[0].pool.size', line: 11, message: /^must be >= 1$/ },
  { name: 'zero pool.connect_timeout', text: withPool('      connect_timeout: 0s\n'), path: 'clusters[0].pool.connect_timeout', line: 11, message: /greater than 0/ },
  { name: 'zero lag budget', text: `${valid}    routing:\n      max_replica_lag: { time: 0s }\n`, path: 'clusters[0].routing.max_replica_lag.time', line: 11, message: /greater than 0/ },
  { name: 'zero health timeout', text: `${valid}    health: { timeout: 0ms }\n`, path: 'clusters[0].health.timeout', line: 10, message: /greater than 0/ },
  { name: 'fall 0', text: `${valid}    health:\n      fall: 0\n`, path: 'clusters[0].health.fall', line: 11, message: /^must be >= 1$/ },
  { name: 'tls without cert', text: `${valid}    tls: { mode: require }\n`, path: 'clusters[0].tls.cert', line: 10, message: /is required unless tls.mode is disable/ },
  { name: 'verify-full without ca', text: `${valid}    backend_tls: { mode: verify-full }\n`, path: 'clusters[0].backend_tls.ca', line: 10, message: /verify-full/ },
  { name: 'nodes is not a list', text: valid.replace(/ {4}nodes:\n.*\n.*\n/, '    nodes: pg1\n'), path: 'clusters[0].nodes', line: 5, message: /^expected a list, got "pg1"$/ },
  { name: 'patroni URL not http', text: `${valid}    discovery: { patroni: [ "ftp://x" ] }\n`, path: 'clusters[0].discovery.patroni[0]', line: 10, message: /http/ },
  { name: 'bad log level', text: `log: { level: loud }\n${valid}`, path: 'log.level', line: 1, message: /must be trace \| debug/ },
  { name: 'no clusters', text: 'admin: { token: x }\n', path: 'clusters', line: 1, message: /^is required$/ },
];

describe('broken configs: ok=false, exact key path and YAML line', () => {
  it('has at least the 14 required cases', () => expect(cases.length).toBeGreaterThanOrEqual(14));

  it.each(cases)('$name', ({ text, env, path, line, message }) => {
    const r = loadConfigText(text, { env: env ?? {} });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const problem = r.problems.find((p) => p.path === path);
    expect(problem, JSON.stringify(r.problems)).toBeDefined();
    expect(problem!.line).toBe(line);
    expect(problem!.message).toMatch(message);
    const prefix = path ? `f.yaml:${line}: ${path}: ` : `f.yaml:${line}: `;
    expect(formatProblem(problem!, 'f.yaml').startsWith(prefix)).toBe(true);
  });

  it('no case reports problems away from its fault (no cascades into valid keys)', () => {
    for (const c of cases) {
      const r = loadConfigText(c.text, { env: c.env ?? {} });
      expect(r.ok, c.name).toBe(false);
      if (r.ok || c.path === '') continue; // YAML syntax errors cascade by nature
      expect(r.problems.map((p) => p.line), c.name).toEqual(r.problems.map(() => c.line));
    }
  });
});
