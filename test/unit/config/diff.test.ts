import { describe, expect, it } from 'vitest';
import { describeDiff, diffConfig, isEmptyDiff, sameValue } from '../../../src/config/diff.js';
import { loadConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/types.js';
import { minimalYaml } from './fixtures.js';

function load(text: string): Config {
  const r = loadConfigText(text, { env: {} });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.config;
}

const base = load(minimalYaml);

describe('diffConfig', () => {
  it('finds nothing between equal configs', () => {
    const d = diffConfig(base, load(minimalYaml));
    expect(isEmptyDiff(d)).toBe(true);
    expect(describeDiff(d)).toEqual([]);
  });

  it('nodes added, removed and changed (weight, port)', () => {
    const next = load(
      minimalYaml
        .replace('{ name: pg1, host: 127.0.0.1, port: 5432 }', '{ name: pg3, host: 127.0.0.1, port: 5434 }')
        .replace('port: 5433 }', 'port: 5435, weight: 3 }'),
    );
    const d = diffConfig(base, next);
    expect(d.clusters).toEqual([
      {
        cluster: 'main',
        nodesAdded: ['pg3'],
        nodesRemoved: ['pg1'],
        nodesChanged: [{ node: 'pg2', fields: ['port', 'weight'] }],
        usersAdded: [],
        usersRemoved: [],
        usersChanged: [],
        sections: [],
      },
    ]);
    expect(describeDiff(d)).toEqual(['main: node pg3 added', 'main: node pg1 removed', 'main: node pg2 port, weight changed']);
  });

  it('settings sections, listen and users (passwords never printed)', () => {
    const next = load(
      `${minimalYaml.replace('password: secret', 'password: other').replace('    nodes:', '    listen_read_only: 127.0.0.1:6433\n    nodes:')}` +
        '      - { name: ro, password: x }\n    pool: { size: 5 }\n    routing: { consistency: eventual }\n    health: { fall: 5 }\n',
    );
    const d = diffConfig(base, next);
    expect(d.clusters[0]).toMatchObject({ usersAdded: ['ro'], usersChanged: ['app'], sections: ['listen_read_only', 'pool', 'routing', 'health'] });
    expect(describeDiff(d).join('\n')).not.toMatch(/other|secret/);
  });

  it('clusters added and removed, global sections', () => {
    const second = minimalYaml.replace('clusters:\n', '').replace('name: main', 'name: reports').replace('6432', '7432');
    const next = load(`admin: { token: t, listen: 127.0.0.1:9999 }\nlog: { level: debug }\n${minimalYaml.replace('name: main', 'name: orders')}${second}`);
    const d = diffConfig(base, next);
    expect(d.clustersAdded).toEqual(['orders', 'reports']);
    expect(d.clustersRemoved).toEqual(['main']);
    expect(d.clusters).toEqual([]);
    expect(d.global).toEqual(['admin.listen', 'admin.token', 'log']);
    expect(describeDiff(d)).toEqual(['admin.listen changed', 'admin.token changed', 'log changed', 'cluster orders added', 'cluster reports added', 'cluster main removed']);
  });

  it('roles and a reordering of nodes', () => {
    const reordered = minimalYaml.replace(/( {6}- \{ name: pg1.*\n)( {6}- \{ name: pg2.*\n)/, '$2$1');
    expect(isEmptyDiff(diffConfig(base, load(reordered)))).toBe(true);
    const d = diffConfig(base, load(`${minimalYaml}    roles: { primary: pg1 }\n`));
    expect(d.clusters[0]!.sections).toEqual(['roles']);
  });
});

describe('sameValue', () => {
  it.each([
    [{ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }, true],
    [{ a: 1 }, { a: 1, b: undefined }, true],
    [{ a: 1 }, { a: 2 }, false],
    [[1, 2], [2, 1], false],
    [[1], { 0: 1 }, false],
    ['auto', { primary: 'auto' }, false],
    [null, {}, false],
  ])('%j vs %j: %s', (a, b, same) => expect(sameValue(a, b)).toBe(same));
});
