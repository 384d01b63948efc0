import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { loadConfigText } from '../../../src/config/load.js';
import { initialSnapshot } from '../../../src/app.js';
import { TopologyHolder } from '../../../src/topology/holder.js';
import { MysqlTopologyMonitor } from '../../../src/topology/mysql-monitor.js';
import { judgeGroupMember, secondaryPrimaries, unconfiguredMembers, type GroupMemberRow, type GroupVerdict } from '../../../src/topology/mysql-group.js';
import type { TopologySnapshot } from '../../../src/routing/topology.js';
import { FakeGroupMember, type MemberRow } from '../../support/fake-mysql-group.js';

const m = (id: string, state: string, role: string, port = 3306): GroupMemberRow => ({ id, host: '127.0.0.1', port, state, role });

describe('judgeGroupMember', () => {
  const rows: [string, GroupMemberRow[], Partial<GroupVerdict>, string?][] = [
    ['no row for itself: not in a group', [m('b', 'ONLINE', 'PRIMARY')], { inGroup: false, ok: true }],
    ['plugin loaded, no group configured (OFFLINE, no group name)', [m('a', 'OFFLINE', '')], { inGroup: false, ok: true }, ''],
    [
      'STOP GROUP_REPLICATION: OFFLINE in a named group, not routed to (it is super_read_only, so read_only alone would keep it readable)',
      [m('a', 'OFFLINE', '')],
      { inGroup: true, ok: false, error: 'group replication is stopped on this member (OFFLINE; group g): its data no longer follows the group' },
    ],
    ['ONLINE PRIMARY of three', [m('a', 'ONLINE', 'PRIMARY'), m('b', 'ONLINE', 'SECONDARY'), m('c', 'ONLINE', 'SECONDARY')], { inGroup: true, ok: true, writable: true, multiPrimary: false }],
    ['ONLINE SECONDARY', [m('b', 'ONLINE', 'PRIMARY'), m('a', 'ONLINE', 'SECONDARY'), m('c', 'ONLINE', 'SECONDARY')], { inGroup: true, ok: true, writable: false }],
    ['RECOVERING: still applying what it missed', [m('a', 'RECOVERING', 'SECONDARY'), m('b', 'ONLINE', 'PRIMARY')], { inGroup: true, ok: false, error: 'group replication member state is RECOVERING' }],
    ['ERROR: left the group', [m('a', 'ERROR', 'SECONDARY')], { inGroup: true, ok: false, error: 'group replication member state is ERROR' }],
    ['lower-case states are read the same', [m('a', 'online', 'primary'), m('b', 'online', 'secondary')], { inGroup: true, ok: true, writable: true }],
    ['minority partition: 1 of 3 reachable', [m('a', 'ONLINE', 'PRIMARY'), m('b', 'UNREACHABLE', 'SECONDARY'), m('c', 'UNREACHABLE', 'SECONDARY')], { inGroup: true, ok: false, error: 'group replication: no quorum (1 of 3 members reachable)' }],
    ['even split: 1 of 2 reachable is no majority', [m('a', 'ONLINE', 'SECONDARY'), m('b', 'UNREACHABLE', 'PRIMARY')], { inGroup: true, ok: false }],
    ['majority partition: 2 of 3 reachable', [m('a', 'ONLINE', 'PRIMARY'), m('b', 'ONLINE', 'SECONDARY'), m('c', 'UNREACHABLE', 'SECONDARY')], { inGroup: true, ok: true, writable: true }],
    ['a RECOVERING peer counts toward quorum', [m('a', 'ONLINE', 'SECONDARY'), m('b', 'RECOVERING', 'SECONDARY'), m('c', 'UNREACHABLE', 'PRIMARY')], { inGroup: true, ok: true, writable: false }],
    ['multi-primary: every ONLINE member PRIMARY', [m('a', 'ONLINE', 'PRIMARY'), m('b', 'ONLINE', 'PRIMARY'), m('c', 'ONLINE', 'PRIMARY')], { inGroup: true, ok: true, writable: true, multiPrimary: true }],
    ['one PRIMARY plus a RECOVERING one is not multi-primary', [m('a', 'ONLINE', 'PRIMARY'), m('b', 'RECOVERING', 'PRIMARY')], { inGroup: true, ok: true, multiPrimary: false }],
  ];
  it.each(rows)('%s', (_name, members, expected, group = 'g') => {
    expect(judgeGroupMember({ self: 'a', group, members })).toMatchObject(expected);
  });
});

describe('secondaryPrimaries', () => {
  it('keeps the first writable member of a multi-primary group and demotes the others', () => {
    const demoted = secondaryPrimaries([
      { name: 'n1', group: 'g', writable: false, multiPrimary: true },
      { name: 'n2', group: 'g', writable: true, multiPrimary: true },
      { name: 'n3', group: 'g', writable: true, multiPrimary: true },
    ]);
    expect([...demoted]).toEqual(['n3']);
  });
  it('leaves writable nodes of different groups or of no group alone (they remain a split brain)', () => {
    expect(secondaryPrimaries([
      { name: 'n1', group: 'g1', writable: true, multiPrimary: true },
      { name: 'n2', group: 'g2', writable: true, multiPrimary: true },
      { name: 'n3', group: null, writable: true, multiPrimary: false },
    ]).size).toBe(0);
  });
  it('single-primary groups are never collapsed', () => {
    expect(secondaryPrimaries([
      { name: 'n1', group: 'g', writable: true, multiPrimary: false },
      { name: 'n2', group: 'g', writable: true, multiPrimary: false },
    ]).size).toBe(0);
  });
});

describe('unconfiguredMembers', () => {
  it('lists members that no configured node matches by host and port (localhost = 127.0.0.1)', () => {
    const view = { self: 'a', group: 'g', members: [m('a', 'ONLINE', 'PRIMARY', 3306), m('b', 'ONLINE', 'SECONDARY', 3307), { ...m('c', 'ONLINE', 'SECONDARY', 3306), host: '10.0.0.9' }] };
    expect(unconfiguredMembers(view, [{ host: 'localhost', port: 3306 }, { host: '127.0.0.1', port: 3307 }]).map((r) => r.id)).toEqual(['c']);
  });
});

/**
 * The monitor against three stand-in MySQL 8 members (test/support/fake-mysql-group.ts):
 * what it reads from performance_schema.replication_group_members decides roles
 * and eligibility. MySQL 8 cannot be installed here, so this is the only test of the
 * path against anything; docs/mysql.md says so.
 */
describe('MysqlTopologyMonitor with Group Replication members', () => {
  const uuids = ['aaaaaaaa-0000-0000-0000-000000000001', 'aaaaaaaa-0000-0000-0000-000000000002', 'aaaaaaaa-0000-0000-0000-000000000003'];
  let members: FakeGroupMember[] = [];
  let monitor: MysqlTopologyMonitor | null = null;
  const logged: { msg: string; member?: string }[] = [];

  afterEach(async () => {
    monitor?.stop();
    monitor = null;
    await Promise.all(members.map((f) => f.close().catch(() => undefined)));
    members = [];
    logged.length = 0;
  });

  async function start(opts: { extraMember?: boolean } = {}) {
    members = uuids.map((uuid, i) => new FakeGroupMember({ uuid, groupName: 'grp-1', readOnly: i !== 0, superReadOnly: i !== 0, gtidExecuted: 'grp-1:1-100', view: [] }));
    const ports = await Promise.all(members.map((f) => f.listen()));
    const all: MemberRow[] = ports.map((port, i) => ({ id: uuids[i]!, host: '127.0.0.1', port, state: 'ONLINE', role: i === 0 ? 'PRIMARY' : 'SECONDARY' }));
    if (opts.extraMember) all.push({ id: 'aaaaaaaa-0000-0000-0000-000000000009', host: '127.0.0.1', port: 1, state: 'ONLINE', role: 'SECONDARY' });
    for (const f of members) f.state.view = all.map((r) => ({ ...r }));
    const text = `clusters:
  - name: gr
    protocol: mysql
    listen: 127.0.0.1:6446
    nodes:
${ports.map((p, i) => `      - { name: m${i + 1}, host: 127.0.0.1, port: ${p} }`).join('\n')}
    users:
      - { name: app, password: secret }
    health: { interval: 50ms, timeout: 1s, fall: 3, rise: 2 }
`;
    const r = loadConfigText(text, { env: {} });
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    const cluster = r.config.clusters[0]!;
    const holder = new TopologyHolder(initialSnapshot(cluster));
    const sink = new Writable({
      write(chunk, _enc, done) {
        logged.push(JSON.parse(String(chunk)));
        done();
      },
    });
    monitor = new MysqlTopologyMonitor(cluster, holder, pino({ level: 'info' }, sink));
    monitor.start();
    return { holder, all };
  }

  const node = (s: TopologySnapshot, name: string) => s.nodes.find((n) => n.name === name)!;
  const setView = (fn: (row: MemberRow) => Partial<MemberRow>) => {
    for (const f of members) f.state.view = f.state.view.map((r) => ({ ...r, ...fn(r) }));
  };

  it('single-primary group: the PRIMARY takes writes, SECONDARYs are replicas, group state shown per node', async () => {
    const { holder } = await start();
    const s = await holder.waitFor((x) => x.primary === 'm1' && x.nodes.every((n) => n.up), 5000);
    expect(s).not.toBeNull();
    expect(node(s!, 'm2').role).toBe('replica');
    expect(node(s!, 'm1').groupReplication).toEqual({ state: 'ONLINE', role: 'PRIMARY', multiPrimary: false });
    expect(node(s!, 'm3').groupReplication).toEqual({ state: 'ONLINE', role: 'SECONDARY', multiPrimary: false });
    expect(s!.splitBrain).toBe(false);
    // The group's own applier channel is not replication lag from a source.
    expect(members[0]!.statements.some((q) => q.includes('replication_group_members'))).toBe(true);
  });

  it('a member in RECOVERING or ERROR is down at once, and comes back after `rise` good probes', async () => {
    const { holder } = await start();
    await holder.waitFor((x) => x.primary === 'm1' && x.nodes.every((n) => n.up), 5000);
    members[2]!.state.view = members[2]!.state.view.map((r) => (r.id === uuids[2] ? { ...r, state: 'RECOVERING' } : r));
    const down = await holder.waitFor((x) => !node(x, 'm3').up, 2000);
    expect(down).not.toBeNull();
    expect(node(down!, 'm3').groupReplication?.state).toBe('RECOVERING');
    expect(node(down!, 'm2').up).toBe(true);
    members[2]!.state.view = members[2]!.state.view.map((r) => (r.id === uuids[2] ? { ...r, state: 'ONLINE' } : r));
    expect(await holder.waitFor((x) => node(x, 'm3').up, 2000)).not.toBeNull();
  });

  it('STOP GROUP_REPLICATION on a secondary: it lists only itself OFFLINE, stays super_read_only, and gets no reads', async () => {
    const { holder } = await start();
    await holder.waitFor((x) => x.primary === 'm1' && x.nodes.every((n) => n.up), 5000);
    // What MySQL 8 shows on the member after STOP GROUP_REPLICATION; the others drop it from their view.
    members[2]!.state.view = [{ id: uuids[2]!, host: '127.0.0.1', port: 0, state: 'OFFLINE', role: '' }];
    for (const f of members.slice(0, 2)) f.state.view = f.state.view.filter((r) => r.id !== uuids[2]);
    const down = await holder.waitFor((x) => !node(x, 'm3').up, 2000);
    expect(down).not.toBeNull();
    expect(down!.primary).toBe('m1');
    expect(node(down!, 'm2').up).toBe(true);
  });

  it('primary failover inside the group: the old PRIMARY in ERROR, a new one elected', async () => {
    const { holder } = await start();
    await holder.waitFor((x) => x.primary === 'm1' && x.nodes.every((n) => n.up), 5000);
    // m1 expelled; m2 elected: it lists itself PRIMARY first, super_read_only goes off a moment later.
    members[0]!.state.view = members[0]!.state.view.map((r) => (r.id === uuids[0] ? { ...r, state: 'ERROR' } : { ...r, state: 'UNREACHABLE' }));
    members[0]!.state.readOnly = members[0]!.state.superReadOnly = true;
    for (const f of members.slice(1)) f.state.view = f.state.view.filter((r) => r.id !== uuids[0]).map((r) => ({ ...r, role: r.id === uuids[1] ? 'PRIMARY' : 'SECONDARY' }));
    const between = await holder.waitFor((x) => !node(x, 'm1').up, 2000);
    expect(between?.primary).toBeNull();
    // Still super_read_only: not writable yet although PRIMARY in the group.
    expect(node(between!, 'm2').role).toBe('replica');
    members[1]!.state.readOnly = members[1]!.state.superReadOnly = false;
    const after = await holder.waitFor((x) => x.primary === 'm2', 2000);
    expect(after).not.toBeNull();
    expect(after!.splitBrain).toBe(false);
  });

  it('a member in a minority partition is down although it says ONLINE for itself', async () => {
    const { holder } = await start();
    await holder.waitFor((x) => x.primary === 'm1' && x.nodes.every((n) => n.up), 5000);
    members[2]!.state.view = members[2]!.state.view.map((r) => (r.id === uuids[2] ? r : { ...r, state: 'UNREACHABLE' }));
    const s = await holder.waitFor((x) => !node(x, 'm3').up, 2000);
    expect(s).not.toBeNull();
    expect(s!.primary).toBe('m1');
  });

  it('multi-primary group: writes go to the first configured member, the others are read from, no split brain', async () => {
    const { holder } = await start();
    setView(() => ({ role: 'PRIMARY' }));
    for (const f of members) f.state.readOnly = f.state.superReadOnly = false;
    const s = await holder.waitFor((x) => x.nodes.every((n) => n.groupReplication?.multiPrimary), 3000);
    expect(s).not.toBeNull();
    expect(s!.primary).toBe('m1');
    expect(s!.splitBrain).toBe(false);
    expect(node(s!, 'm2').role).toBe('replica');
    expect(node(s!, 'm3').role).toBe('replica');
    // The write target leaves: the next configured member takes the writes.
    await members[0]!.close();
    for (const f of members.slice(1)) f.state.view = f.state.view.filter((r) => r.id !== uuids[0]);
    const next = await holder.waitFor((x) => x.primary === 'm2', 3000);
    expect(next).not.toBeNull();
    expect(next!.splitBrain).toBe(false);
  });

  it('two writable nodes that are not one multi-primary group are still a split brain', async () => {
    const { holder } = await start();
    await holder.waitFor((x) => x.primary === 'm1', 5000);
    members[1]!.state.noPlugin = true; // m2 is no group member at all, and writable
    members[1]!.state.readOnly = members[1]!.state.superReadOnly = false;
    // Its monitoring connection learnt about the plugin at connect: a fresh one sees the change.
    members[1]!.dropConnections();
    const s = await holder.waitFor((x) => x.splitBrain, 5000);
    expect(s?.primary ?? null).toBeNull();
  });

  it('logs a group member that is not in the config, once', async () => {
    const { holder } = await start({ extraMember: true });
    await holder.waitFor((x) => x.primary === 'm1' && x.nodes.every((n) => n.up), 5000);
    await new Promise((r) => setTimeout(r, 300));
    const warns = logged.filter((l) => l.msg === 'a group replication member is not in the config; it gets no traffic');
    expect(warns).toHaveLength(1);
    expect(warns[0]!.member).toBe('127.0.0.1:1');
  });
});
