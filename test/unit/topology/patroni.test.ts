import { describe, expect, it } from 'vitest';
import { buildSnapshot, type NodeHealth } from '../../../src/topology/decide.js';
import { decidePatroni, matchMembers, parseClusterJson, withPatroni, type PatroniInput } from '../../../src/topology/patroni.js';
import { replicaEligibility } from '../../../src/routing/eligibility.js';
import type { NodeRole } from '../../../src/routing/topology.js';
import { formatProblem, loadConfigText } from '../../../src/config/load.js';
import { minimalYaml } from '../config/fixtures.js';

/*
 * Payloads shaped as Patroni 3.0.2 answers GET /cluster (copied from the
 * three-node cluster test/integration/topology-patroni.test.ts starts, ports renumbered).
 */
const member = (name: string, port: number, role: string, state: string, extra: Record<string, unknown> = {}) => ({
  name,
  role,
  state,
  api_url: `http://127.0.0.1:${port + 1000}/patroni`,
  host: '127.0.0.1',
  port,
  timeline: 1,
  ...extra,
});
const STEADY = {
  members: [
    member('pa0', 5432, 'leader', 'running'),
    member('pa1', 5433, 'replica', 'running', { lag: 0 }),
    member('pa2', 5434, 'replica', 'running', { tags: { noloadbalance: true, nofailover: true }, lag: 0 }),
  ],
};
/** During a switchover pa0 -> pa1: pa1 holds the leader key before it is promoted. */
const SWITCHING = {
  members: [
    member('pa0', 5432, 'replica', 'stopped', { lag: 'unknown' }),
    member('pa1', 5433, 'leader', 'running', { timeline: 1 }),
    member('pa2', 5434, 'replica', 'running', { tags: { noloadbalance: true, nofailover: true }, lag: 0 }),
  ],
};
/** Leader key expired (the leader died), no one promoted yet. */
const NO_LEADER = {
  members: [member('pa1', 5433, 'replica', 'running', { lag: 0 }), member('pa2', 5434, 'replica', 'running', { tags: { noloadbalance: true }, lag: 0 })],
};
/** A fourth member nobody put in nodes:, and maintenance mode. */
const EXTRA_MEMBER = { ...STEADY, members: [...STEADY.members, member('pa3', 5435, 'replica', 'streaming', { lag: 0 })], pause: true };

const NODES = [
  { name: 'pg-a', host: '127.0.0.1', port: 5432, weight: 1 },
  { name: 'pg-b', host: '127.0.0.1', port: 5433, weight: 1 },
  { name: 'pg-c', host: '127.0.0.1', port: 5434, weight: 1 },
];

/** Probe results: 'w' writable, 'r' in recovery, 'down'. */
function health(spec: Record<string, 'w' | 'r' | 'down'>): Map<string, NodeHealth> {
  return new Map(
    Object.entries(spec).map(([name, s]) => {
      const role: NodeRole = s === 'w' ? 'primary' : 'replica';
      return [name, { up: s !== 'down', streak: 0, role, position: 100n }];
    }),
  );
}

function snapshotOf(input: PatroniInput, probes: Record<string, 'w' | 'r' | 'down'>) {
  const d = decidePatroni(input, NODES, health(probes));
  const snap = buildSnapshot({ cluster: 'main', nodes: NODES, staticPrimary: null, fall: 3, rise: 2, drained: new Set() }, d.health, [{ at: 0, position: 100n }], 1, 1000);
  return { d, snap: withPatroni(snap, d) };
}

const fresh = (body: unknown): PatroniInput => ({ view: parseClusterJson(body), fresh: true });

describe('decidePatroni: writes only to a leader Patroni names and that is writable itself', () => {
  const cases: { name: string; input: PatroniInput; probes: Record<string, 'w' | 'r' | 'down'>; primary: string | null; splitBrain?: boolean; roles: Record<string, NodeRole>; note?: RegExp }[] = [
    { name: 'steady: Patroni and the nodes agree', input: fresh(STEADY), probes: { 'pg-a': 'w', 'pg-b': 'r', 'pg-c': 'r' }, primary: 'pg-a', roles: { 'pg-a': 'primary', 'pg-b': 'replica', 'pg-c': 'replica' } },
    {
      name: 'switchover: Patroni names pa1, still in recovery -> no primary yet',
      input: fresh(SWITCHING),
      probes: { 'pg-a': 'r', 'pg-b': 'r', 'pg-c': 'r' },
      primary: null,
      roles: { 'pg-a': 'replica', 'pg-b': 'replica', 'pg-c': 'replica' },
      note: /pg-b is still in recovery/,
    },
    { name: 'switchover done: pa1 writable', input: fresh(SWITCHING), probes: { 'pg-a': 'r', 'pg-b': 'w', 'pg-c': 'r' }, primary: 'pg-b', roles: { 'pg-b': 'primary' } },
    {
      name: 'old leader not yet demoted while Patroni names pa1: never written to',
      input: fresh(SWITCHING),
      probes: { 'pg-a': 'w', 'pg-b': 'r', 'pg-c': 'r' },
      primary: null,
      roles: { 'pg-a': 'unknown', 'pg-b': 'replica' },
      note: /pg-a is writable but Patroni's leader is pa1/,
    },
    {
      name: 'two writable nodes: Patroni decides, no split brain stop, the other is unused',
      input: fresh(STEADY),
      probes: { 'pg-a': 'w', 'pg-b': 'w', 'pg-c': 'r' },
      primary: 'pg-a',
      roles: { 'pg-a': 'primary', 'pg-b': 'unknown' },
      note: /pg-b is writable/,
    },
    { name: 'the node promoted behind Patroni\'s back is not used', input: fresh(STEADY), probes: { 'pg-a': 'r', 'pg-b': 'w', 'pg-c': 'r' }, primary: null, roles: { 'pg-b': 'unknown' }, note: /pg-b is writable but Patroni's leader is pa0/ },
    { name: 'no leader key: no primary', input: fresh(NO_LEADER), probes: { 'pg-a': 'down', 'pg-b': 'w', 'pg-c': 'r' }, primary: null, roles: { 'pg-b': 'unknown' }, note: /names no leader/ },
    { name: 'leader is down: no primary', input: fresh(STEADY), probes: { 'pg-a': 'down', 'pg-b': 'r', 'pg-c': 'r' }, primary: null, roles: { 'pg-b': 'replica' } },
    {
      name: 'Patroni unreachable (stale view): roles from pg_is_in_recovery()',
      input: { view: parseClusterJson(STEADY), fresh: false },
      probes: { 'pg-a': 'r', 'pg-b': 'w', 'pg-c': 'r' },
      primary: 'pg-b',
      roles: { 'pg-a': 'replica', 'pg-b': 'primary' },
      note: /unreachable/,
    },
    {
      name: 'Patroni never answered: roles from pg_is_in_recovery(), split brain still refused',
      input: { view: null, fresh: false },
      probes: { 'pg-a': 'w', 'pg-b': 'w', 'pg-c': 'r' },
      primary: null,
      splitBrain: true,
      roles: { 'pg-a': 'primary', 'pg-b': 'primary' },
      note: /unreachable/,
    },
    {
      name: 'leader not among nodes: no writes',
      input: fresh({ members: [member('elsewhere', 6000, 'leader', 'running'), ...STEADY.members.slice(1)] }),
      probes: { 'pg-a': 'w', 'pg-b': 'r', 'pg-c': 'r' },
      primary: null,
      roles: { 'pg-a': 'unknown' },
      note: /elsewhere is not one of the configured nodes/,
    },
    {
      name: 'two members claim leader (broken answer): trust neither',
      input: fresh({ members: [member('pa0', 5432, 'leader', 'running'), member('pa1', 5433, 'leader', 'running'), STEADY.members[2]] }),
      probes: { 'pg-a': 'w', 'pg-b': 'r', 'pg-c': 'r' },
      primary: null,
      roles: { 'pg-a': 'unknown' },
      note: /2 leaders/,
    },
    { name: "older Patroni's role name master", input: fresh({ members: [member('pa0', 5432, 'master', 'running'), ...STEADY.members.slice(1)] }), probes: { 'pg-a': 'w', 'pg-b': 'r', 'pg-c': 'r' }, primary: 'pg-a', roles: {} },
    {
      name: 'standby cluster: standby_leader is not a read-write leader',
      input: fresh({ members: [member('pa0', 5432, 'standby_leader', 'running'), ...STEADY.members.slice(1)] }),
      probes: { 'pg-a': 'r', 'pg-b': 'r', 'pg-c': 'r' },
      primary: null,
      roles: { 'pg-a': 'replica' },
      note: /names no leader/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { d, snap } = snapshotOf(c.input, c.probes);
      expect(snap.primary).toBe(c.primary);
      expect(snap.splitBrain).toBe(c.splitBrain ?? false);
      for (const [node, role] of Object.entries(c.roles)) expect(snap.nodes.find((n) => n.name === node)!.role, node).toBe(role);
      if (c.note) expect(d.notes.join('; ')).toMatch(c.note);
      else expect(d.notes).toEqual([]);
    });
  }
});

describe('tags', () => {
  const budget = { bytes: 1e9, timeMs: 1e9 };
  it('noloadbalance: never eligible for reads; nofailover: shown only', () => {
    const { snap } = snapshotOf(fresh(STEADY), { 'pg-a': 'w', 'pg-b': 'r', 'pg-c': 'r' });
    const c = snap.nodes.find((n) => n.name === 'pg-c')!;
    expect(c.patroni).toEqual({ member: 'pa2', role: 'replica', state: 'running', noloadbalance: true, nofailover: true });
    expect(replicaEligibility(c, budget)).toEqual({ eligible: false, reason: 'noloadbalance' });
    expect(replicaEligibility(snap.nodes.find((n) => n.name === 'pg-b')!, budget)).toEqual({ eligible: true });
    expect(snap.patroni).toEqual({ reachable: true, leader: 'pa0' });
  });
  it('the last tags seen stay in force while Patroni is unreachable', () => {
    const { snap } = snapshotOf({ view: parseClusterJson(STEADY), fresh: false }, { 'pg-a': 'w', 'pg-b': 'r', 'pg-c': 'r' });
    expect(replicaEligibility(snap.nodes.find((n) => n.name === 'pg-c')!, budget).reason).toBe('noloadbalance');
    expect(snap.patroni).toEqual({ reachable: false, leader: null });
  });
  it('tag values as Patroni reads them (parse_bool)', () => {
    const tagged = (v: unknown) => parseClusterJson({ members: [{ name: 'x', role: 'replica', state: 'running', tags: { noloadbalance: v } }] }).members[0]!.noloadbalance;
    expect([true, 'true', 'on', 'yes', 1, 'TRUE'].map(tagged)).toEqual([true, true, true, true, true, true]);
    expect([false, 'false', 'off', 0, null, undefined, 'maybe'].map(tagged)).toEqual([false, false, false, false, false, false, false]);
  });
});

describe('members and nodes', () => {
  it('matches by host:port first, then by name; ignores members not in nodes:', () => {
    const view = parseClusterJson(EXTRA_MEMBER);
    expect(view.paused).toBe(true);
    const byName = matchMembers(parseClusterJson({ members: [{ name: 'pg-b', role: 'replica', state: 'running', host: 'db2.internal', port: 5432 }] }), NODES);
    expect(byName.byNode.get('pg-b')?.name).toBe('pg-b');
    const d = decidePatroni(fresh(EXTRA_MEMBER), NODES, health({ 'pg-a': 'w', 'pg-b': 'r', 'pg-c': 'r' }));
    expect(d.unknownMembers).toEqual(['pa3']);
    expect([...d.nodes.keys()]).toEqual(['pg-a', 'pg-b', 'pg-c']);
    expect(d.leader).toBe('pg-a');
  });
  it('a configured node Patroni does not list keeps its probed role, but is never the primary', () => {
    const onlyTwo = { members: STEADY.members.slice(0, 2) };
    const { snap } = snapshotOf(fresh(onlyTwo), { 'pg-a': 'w', 'pg-b': 'r', 'pg-c': 'r' });
    expect(snap.nodes.find((n) => n.name === 'pg-c')).toMatchObject({ role: 'replica', patroni: { member: null, noloadbalance: false } });
    expect(snap.primary).toBe('pg-a');
  });
  it('rejects what is not a /cluster answer (counts as unreachable, not as "no leader")', () => {
    for (const bad of [null, 'html', {}, { members: 'x' }, { members: [1] }, { members: [{ role: 'leader' }] }]) expect(() => parseClusterJson(bad)).toThrow(/cluster answer/);
  });
  it('port as a string and missing fields are tolerated', () => {
    const v = parseClusterJson({ members: [{ name: 'a', port: '5432', host: '127.0.0.1' }] });
    expect(v.members[0]).toEqual({ name: 'a', role: 'unknown', state: 'unknown', host: '127.0.0.1', port: 5432, noloadbalance: false, nofailover: false });
  });
});

describe('config: discovery.patroni', () => {
  it('is accepted for PostgreSQL clusters and refused, with its key path, for MySQL ones', () => {
    const pgOk = loadConfigText(`${minimalYaml}    discovery: { patroni: [ "http://127.0.0.1:8008", "https://u:p@db2:8008/x" ] }\n`, { env: {} });
    expect(pgOk.ok).toBe(true);
    if (pgOk.ok) expect(pgOk.config.clusters[0]!.discovery).toEqual({ patroni: ['http://127.0.0.1:8008', 'https://u:p@db2:8008/x'] });
    const my = loadConfigText(`${minimalYaml.replace('protocol: postgres', 'protocol: mysql')}    discovery: { patroni: [ "http://127.0.0.1:8008" ] }\n`, { env: {} });
    expect(my.ok).toBe(false);
    if (!my.ok) expect(my.problems.map((p) => formatProblem(p)).join('\n')).toMatch(/clusters\[0\]\.discovery\.patroni.*protocol: postgres clusters only/);
  });
});
