import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { sleep } from '../../src/devcluster/proc.js';
import { Mysql8Group, type Account } from '../support/mysql8-group.js';
import { startProxy, type RunningProxy } from '../support/proxy.js';
import { dockerReachable } from '../support/test-backend.js';

/*
 * Group Replication discovery against a REAL MySQL 8.0 group: three members in Docker
 * containers (test/support/mysql8-group.ts), an in-process switchyard in front of them with
 * `roles: auto` (the default), and the monitor finding out by itself that the nodes are
 * group members (@@group_replication_group_name answers) and reading
 * performance_schema.replication_group_members on each.
 *
 * Routing is checked at the backends: performance_schema.events_statements_summary_by_digest
 * on each member, for statements naming a table only this file uses (the monitor's probes
 * never name it; secondaries apply the group's row events without running statements).
 *
 * No MySQL server can be installed on the development machines and no Docker engine runs
 * there: this file is skipped there (one line says so) and runs wherever an engine answers.
 */

const DOCKER = await dockerReachable();
if (!DOCKER) {
  console.log('[mysql8-group-replication] skipped: no Docker engine answers (DOCKER_HOST, or /var/run/docker.sock); this file runs a MySQL 8.0 group in containers');
}
const suite = DOCKER ? describe : describe.skip;

const TABLE = 'gr_probe';

suite('MySQL 8.0 Group Replication through the proxy (3 members in containers)', () => {
  let group: Mysql8Group;
  let proxy: RunningProxy;
  /** The group's PRIMARY when the proxy started. */
  let firstPrimary: string;

  function through(p: RunningProxy, who: Account): Promise<mysql.Connection> {
    return mysql.createConnection({ host: '127.0.0.1', port: p.port, user: who.user, password: who.password, database: group.info.database });
  }

  function startGroupProxy(): Promise<RunningProxy> {
    return startProxy({
      protocol: 'mysql',
      nodes: group.info.members,
      // The cluster's first user is the monitoring login; clients log in as app.
      user: group.info.users.monitor,
      moreUsers: [group.info.users.app],
      // An election after a killed primary takes ~5-10 s (suspicion, expel, election, backlog):
      // writes wait for it instead of failing after the default 10 s.
      clusterYaml: '    failover:\n      write_hold: 30s\n',
    });
  }

  const status = () => proxy.app.status().clusters[0]!;
  const nodeStatus = (name: string) => status().nodes.find((n) => n.name === name)!;

  async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
    const t0 = Date.now();
    while (!(await cond())) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms; proxy status ${JSON.stringify(status().nodes.map((n) => ({ n: n.name, up: n.up, role: n.role, eligible: n.eligible, why: n.ineligible_reason, gr: n.group_replication })))}`);
      await sleep(20);
    }
    return Date.now() - t0;
  }

  function delta(before: Record<string, { selects: number; inserts: number }>, after: Record<string, { selects: number; inserts: number }>, key: 'selects' | 'inserts'): Record<string, number> {
    return Object.fromEntries(Object.keys(after).map((k) => [k, after[k]![key] - (before[k]?.[key] ?? 0)]));
  }

  beforeAll(async () => {
    // Pulling mysql:8.0 (~600 MB) on a cold engine and three first starts can take minutes.
    group = await Mysql8Group.start();
    firstPrimary = (await group.primaryName())!;
    expect(firstPrimary).not.toBeNull();
    await group.query(firstPrimary, `CREATE TABLE ${group.info.database}.${TABLE} (id INT PRIMARY KEY, v INT NOT NULL)`);
    await group.sync(firstPrimary);
    // Started after the accounts exist and nobody has logged in as app: its first pooled
    // logins to each member take caching_sha2_password's FULL authentication path (the
    // server's cache of verified accounts is empty until a first login succeeds), over the
    // RSA key exchange since backend_tls is `disable`.
    proxy = await startGroupProxy();
  }, 900_000);

  afterAll(async () => {
    await proxy?.stop();
    await group?.stop();
  }, 120_000);

  it('finds the PRIMARY from MEMBER_ROLE; the SECONDARY members are replicas, each with its group state', async () => {
    // startProxy returned with a primary and every node up; a replica's lag is known a round or two later.
    const secondaryNames = group.alive().map((m) => m.name).filter((n) => n !== firstPrimary);
    await waitFor('both secondaries eligible', () => secondaryNames.every((n) => nodeStatus(n).eligible === true), 5_000);
    const st = status();
    expect(st.primary).toBe(firstPrimary);
    expect(st.split_brain).toBe(false);
    const view = await group.members(firstPrimary);
    expect(view.map((r) => r.MEMBER_STATE)).toEqual(['ONLINE', 'ONLINE', 'ONLINE']);
    for (const row of view) {
      const n = nodeStatus(row.MEMBER_HOST);
      expect(n.up).toBe(true);
      expect(n.role).toBe(row.MEMBER_ROLE === 'PRIMARY' ? 'primary' : 'replica');
      expect(n.group_replication).toEqual({ member_state: 'ONLINE', member_role: row.MEMBER_ROLE, multi_primary: false });
      if (row.MEMBER_ROLE === 'SECONDARY') expect(n.eligible).toBe(true);
    }
    console.log(`[mysql8-group-replication] primary ${st.primary}; view ${JSON.stringify(view.map((r) => `${r.MEMBER_HOST}:${r.MEMBER_STATE}:${r.MEMBER_ROLE}`))}`);
  });

  it('caching_sha2_password accounts: mysql2 logs in through a proxy whose backend logins find the sha2 cache empty', async () => {
    const accounts = await group.query<{ user: string; plugin: string }>(firstPrimary, "SELECT user, plugin FROM mysql.user WHERE user IN (?, ?) ORDER BY user", [group.info.users.app.user, group.info.users.monitor.user]);
    expect(accounts.map((a) => a.plugin)).toEqual(['caching_sha2_password', 'caching_sha2_password']);
    // FLUSH PRIVILEGES empties caching_sha2_password's cache, so the next login of every account on
    // every member takes the full-authentication path again. LOCAL: not written to the binary
    // log, which on a secondary would be a transaction the group does not have.
    for (const m of group.alive()) await group.query(m.name, 'FLUSH LOCAL PRIVILEGES');
    const fresh = await startGroupProxy();
    try {
      const secondaryNames = group.alive().map((m) => m.name).filter((n) => n !== firstPrimary);
      await waitFor('both secondaries eligible in the fresh proxy', () => secondaryNames.every((n) => fresh.app.status().clusters[0]!.nodes.find((x) => x.name === n)?.eligible === true), 5_000);
      const c = await through(fresh, group.info.users.app);
      try {
        const ids = new Map(await Promise.all(group.alive().map(async (m) => [Number((await group.query<{ id: number }>(m.name, 'SELECT @@server_id AS id'))[0]!.id), m.name] as const)));
        const readers = new Set<string>();
        for (let i = 0; i < 4; i++) {
          const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@server_id AS id');
          readers.add(ids.get(Number(rows[0]!.id))!);
        }
        // Both secondaries answered (round-robin over two), so both backend logins succeeded.
        expect([...readers].sort()).toEqual([...secondaryNames].sort());
        await c.query(`INSERT INTO ${TABLE} (id, v) VALUES (?, ?)`, [900_001, 1]);
        const [row] = await group.query<{ v: number }>(firstPrimary, `SELECT v FROM ${group.info.database}.${TABLE} WHERE id = 900001`);
        expect(row?.v).toBe(1);
      } finally {
        await c.end();
      }
    } finally {
      await fresh.stop();
    }
  });

  it('reads go to the SECONDARY members and writes to the PRIMARY, counted at the backends', async () => {
    const before = await group.statementCounts(TABLE);
    const writer = await through(proxy, group.info.users.app);
    for (let id = 1; id <= 50; id++) await writer.query(`INSERT INTO ${TABLE} (id, v) VALUES (?, ?)`, [id, id * 10]);
    await writer.end();
    await group.sync(firstPrimary);
    // The monitor has seen both caught up (a secondary over the lag budget would send reads to the primary).
    const secondaryNames = group.alive().map((m) => m.name).filter((n) => n !== firstPrimary);
    await waitFor('both secondaries eligible', () => secondaryNames.every((n) => nodeStatus(n).eligible === true && nodeStatus(n).lag_bytes === 0), 5_000);
    // A session that wrote nothing: read-your-writes does not send its reads to the primary.
    const reader = await through(proxy, group.info.users.app);
    let wrong = 0;
    for (let i = 0; i < 200; i++) {
      const id = (i % 50) + 1;
      const [rows] = await reader.query<mysql.RowDataPacket[]>(`SELECT v FROM ${TABLE} WHERE id = ?`, [id]);
      if (Number(rows[0]?.v) !== id * 10) wrong++;
    }
    await reader.end();
    const after = await group.statementCounts(TABLE);
    const selects = delta(before, after, 'selects');
    const inserts = delta(before, after, 'inserts');
    console.log(`[mysql8-group-replication] 200 reads ${JSON.stringify(selects)}, 50 writes ${JSON.stringify(inserts)} (primary ${firstPrimary})`);
    expect(wrong).toBe(0);
    expect(inserts[firstPrimary]).toBe(50);
    expect(selects[firstPrimary]).toBe(0);
    const secondaries = Object.keys(selects).filter((n) => n !== firstPrimary);
    expect(secondaries.reduce((s, n) => s + selects[n]!, 0)).toBe(200);
    // Smooth weighted round-robin over two equal weights: 100 each.
    for (const n of secondaries) expect(selects[n]).toBe(100);
  });

  it('STOP GROUP_REPLICATION on a SECONDARY: its MEMBER_STATE leaves ONLINE and it gets no reads; START brings it back', async () => {
    const secondaries = group.alive().map((m) => m.name).filter((n) => n !== firstPrimary);
    const [victim, other] = secondaries as [string, string];
    await group.stopMember(victim);
    try {
      // Its own view: one row, itself, OFFLINE (MEMBER_ID may be empty then, so not matched by uuid).
      expect((await group.members(victim)).map((r) => r.MEMBER_STATE)).toEqual(['OFFLINE']);
      await waitFor(`${other} no longer lists ${victim}`, async () => !(await group.members(other)).some((r) => r.MEMBER_HOST === victim), 10_000);
      const [ro] = await group.query<{ sro: number }>(victim, 'SELECT @@global.super_read_only AS sro');
      expect(Number(ro?.sro)).toBe(1);
      // A stopped member no longer receives the group's transactions (MySQL's manual warns of
      // stale reads from it): with no write since, its GTID lag still reads 0, so only its
      // group state can keep it out.
      const ms = await waitFor(`${victim} ineligible after STOP GROUP_REPLICATION`, () => nodeStatus(victim).eligible === false, 5_000);
      console.log(`[mysql8-group-replication] ${victim} ineligible ${ms} ms after STOP GROUP_REPLICATION: ${JSON.stringify(nodeStatus(victim))}`);
      expect(status().primary).toBe(firstPrimary);
      const before = await group.statementCounts(TABLE);
      const reader = await through(proxy, group.info.users.app);
      for (let i = 0; i < 100; i++) await reader.query(`SELECT v FROM ${TABLE} WHERE id = ?`, [(i % 50) + 1]);
      await reader.end();
      const selects = delta(before, await group.statementCounts(TABLE), 'selects');
      console.log(`[mysql8-group-replication] 100 reads with ${victim} stopped: ${JSON.stringify(selects)}`);
      expect(selects[victim]).toBe(0);
      expect(selects[other]).toBe(100);
      expect(selects[firstPrimary]).toBe(0);
    } finally {
      // Always: the failover test below needs three members (two of two is no majority after a kill).
      await group.startMember(victim);
    }
    const back = await waitFor(`${victim} eligible again after START GROUP_REPLICATION`, () => nodeStatus(victim).eligible === true, 10_000);
    console.log(`[mysql8-group-replication] ${victim} eligible ${back} ms after it was ONLINE again`);
    expect(nodeStatus(victim).group_replication?.member_state).toBe('ONLINE');
  });

  it('killing the PRIMARY: the group elects a new one and writes resume on it through the same proxy', async () => {
    const old = (await group.primaryName())!;
    expect(old).toBe(firstPrimary);
    const acked: number[] = [];
    const errors: string[] = [];
    let running = true;
    const writer = (async () => {
      let c: mysql.Connection | null = null;
      // Bounded: at most 5,000 attempts (the loop stops much earlier, when told).
      for (let id = 100_001; running && id < 105_000; id++) {
        try {
          if (!c) {
            c = await through(proxy, group.info.users.app);
            // A connection the proxy closes while the primary is gone must not throw out of the test.
            c.on('error', () => undefined);
          }
          await c.query(`INSERT INTO ${TABLE} (id, v) VALUES (?, ?)`, [id, 1]);
          acked.push(id);
        } catch (e) {
          errors.push((e as Error).message);
          c?.destroy();
          c = null;
          await sleep(100);
        }
        await sleep(20);
      }
      await c?.end().catch(() => undefined);
    })();
    try {
      await waitFor('writes flowing before the kill', () => acked.length >= 10, 10_000);
      const killedAt = Date.now();
      const ackedBefore = acked.length;
      await group.killMember(old);
      let elected: string | null = null;
      for (const deadline = Date.now() + 60_000; !elected || elected === old; await sleep(200)) {
        if (Date.now() > deadline) throw new Error(`no new PRIMARY within 60 s of killing ${old}`);
        elected = await group.primaryName();
      }
      const electedAt = Date.now();
      await waitFor(`the proxy writes to ${elected}`, () => status().primary === elected, 30_000);
      const proxyAt = Date.now();
      const firstAckAfter = acked.length;
      await waitFor('20 writes acknowledged after the election', () => acked.length >= firstAckAfter + 20, 30_000);
      running = false;
      await writer;
      console.log(
        `[mysql8-group-replication] killed ${old}: ${elected} elected after ${electedAt - killedAt} ms, proxy primary after ${proxyAt - killedAt} ms; ` +
          `acked ${acked.length} (${ackedBefore} before the kill), errors ${errors.length}${errors.length ? ` (first: ${errors[0]})` : ''}`,
      );
      // Every acknowledged write is on the new primary (the group certified it before the commit returned).
      await group.sync(elected!);
      const rows = await group.query<{ id: number }>(elected!, `SELECT id FROM ${group.info.database}.${TABLE} WHERE id > 100000`);
      const have = new Set(rows.map((r) => Number(r.id)));
      expect(acked.filter((id) => !have.has(id))).toEqual([]);
      // And the writes after the election ran there, counted at the backend.
      const before = await group.statementCounts(TABLE);
      const c = await through(proxy, group.info.users.app);
      for (let i = 0; i < 20; i++) await c.query(`INSERT INTO ${TABLE} (id, v) VALUES (?, ?)`, [200_000 + i, 2]);
      await c.end();
      const inserts = delta(before, await group.statementCounts(TABLE), 'inserts');
      console.log(`[mysql8-group-replication] 20 writes after the failover: ${JSON.stringify(inserts)}`);
      expect(inserts[elected!]).toBe(20);
      expect(Object.entries(inserts).filter(([n]) => n !== elected).every(([, v]) => v === 0)).toBe(true);
      expect(status().split_brain).toBe(false);
      expect(nodeStatus(old).up).toBe(false);
    } finally {
      running = false;
      await writer.catch(() => undefined);
    }
  });
});
