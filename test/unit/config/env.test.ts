import { describe, expect, it } from 'vitest';
import { expandEnv } from '../../../src/config/env.js';
import { loadConfigText } from '../../../src/config/load.js';
import { minimalYaml } from './fixtures.js';

describe('expandEnv', () => {
  const env = { A: 'x', EMPTY: '', PORT: '7000' };
  it.each([
    ['${A}', 'x', true],
    ['pre-${A}-post', 'pre-x-post', true],
    ['${A}${A}', 'xx', true],
    ['${B:-dflt}', 'dflt', true],
    ['${EMPTY:-dflt}', 'dflt', true],
    ['${EMPTY}', '', true],
    ['${A:-dflt}', 'x', true],
    ['${B:-}', '', true],
    ['${B:-a:-b}', 'a:-b', true],
    ['$$A', '$A', false],
    ['$${A}', '${A}', false],
    ['cost $5', 'cost $5', false],
    ['plain', 'plain', false],
  ])('%s -> %j', (text, value, expanded) => expect(expandEnv(text, env)).toEqual({ ok: true, value, expanded }));

  it.each([
    ['${NOPE}', /environment variable NOPE is not set/],
    ['a ${A} ${NOPE2}', /NOPE2/],
    ['${A', /unterminated/],
    ['${1X}', /invalid variable reference "\$\{1X\}"/],
    ['${}', /invalid variable reference/],
    ['${A:-${B}}', /nested references/],
  ])('%s is an error', (text, message) => {
    const r = expandEnv(text, env);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(message);
  });
});

describe('expansion inside a config', () => {
  it('expands values, never keys, after YAML parsing', () => {
    const text = minimalYaml.replace('password: secret', 'password: "${P}"').replace('host: 127.0.0.1, port: 5432', 'host: "${H:-db1}", port: 5432');
    const r = loadConfigText(text, { env: { P: 'pw' } });
    expect(r.ok ? r.config.clusters[0]!.users[0]!.password : r.problems).toBe('pw');
    expect(r.ok ? r.config.clusters[0]!.nodes[0]!.host : null).toBe('db1');
  });

  it('an expanded value cannot inject YAML', () => {
    const r = loadConfigText(minimalYaml.replace('secret', '"${P}"'), { env: { P: 'x\n  evil: 1\n}' } });
    expect(r.ok ? r.config.clusters[0]!.users[0]!.password : r.problems).toBe('x\n  evil: 1\n}');
  });

  it('a variable in a key position is not expanded (and so is an unknown key)', () => {
    const r = loadConfigText(`\${K}: 1\n${minimalYaml}`, { env: { K: 'log' } });
    expect(r.ok ? 'ok' : r.problems).toEqual([{ path: '${K}', line: 1, message: 'unknown key "${K}"' }]);
  });

  it('an expanded number goes where a number belongs, a numeric password stays a string', () => {
    const text = minimalYaml.replace('port: 5433', 'port: ${PG2_PORT:-5433}').replace('password: secret', 'password: ${APP_PASSWORD}');
    const r = loadConfigText(text, { env: { PG2_PORT: '6543', APP_PASSWORD: '12345' } });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.clusters[0]!.nodes[1]!.port).toBe(6543);
    expect(r.config.clusters[0]!.users[0]!.password).toBe('12345');
  });

  it('a quoted number written in the file is still a type error', () => {
    const r = loadConfigText(minimalYaml.replace('port: 5433', 'port: "5433"'), { env: {} });
    expect(r.ok ? 'ok' : r.problems).toEqual([{ path: 'clusters[0].nodes[1].port', line: 7, message: 'expected a number, got "5433"' }]);
  });

  it('an expanded non-number where a number belongs is reported with its value', () => {
    const r = loadConfigText(minimalYaml.replace('port: 5433', 'port: ${PG2_PORT}'), { env: { PG2_PORT: 'five' } });
    expect(r.ok ? 'ok' : r.problems).toEqual([{ path: 'clusters[0].nodes[1].port', line: 7, message: 'expected a number, got "five"' }]);
  });

  it('$$ escapes a dollar in a config value', () => {
    const r = loadConfigText(minimalYaml.replace('password: secret', 'password: "pa$$word"'), { env: {} });
    expect(r.ok ? r.config.clusters[0]!.users[0]!.password : r.problems).toBe('pa$word');
  });

  it('every unset variable is reported, each at its own line', () => {
    const text = minimalYaml.replace('host: 127.0.0.1, port: 5432', 'host: "${H1}", port: 5432').replace('password: secret', 'password: "${PW}"');
    const r = loadConfigText(text, { env: {} });
    expect(r.ok ? 'ok' : r.problems.map((p) => [p.path, p.line])).toEqual([
      ['clusters[0].nodes[0].host', 6],
      ['clusters[0].users[0].password', 9],
    ]);
  });
});

describe('env problems and schema problems together', () => {
  it('reports an unset variable and the other faults of the file in one run, once per key', () => {
    const text = minimalYaml.replace('port: 5432', 'port: ${PG1_PORT}').replace('protocol: postgres', 'protocol: pg');
    const r = loadConfigText(text, { env: {} });
    expect(r.ok ? 'ok' : r.problems.map((p) => [p.line, p.path, p.message.slice(0, 30)])).toEqual([
      [3, 'clusters[0].protocol', 'must be postgres | mysql (got '],
      [6, 'clusters[0].nodes[0].port', 'environment variable PG1_PORT '],
    ]);
  });
});
