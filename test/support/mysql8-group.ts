import { randomUUID } from 'node:crypto';
import mysql from 'mysql2/promise';
import { freePort, sleep, until } from '../../src/devcluster/proc.js';

/*
 * A real MySQL 8.0 single-primary Group Replication group of three members in Docker
 * containers (testcontainers), for the one thing no stand-in can show: that the topology
 * monitor reads a real group's performance_schema.replication_group_members right.
 * No MySQL server can be installed on these machines (Debian ships MariaDB), so this runs
 * only where a Docker engine answers (test/integration/mysql8-group-replication.test.ts).
 *
 * The setup follows the MySQL 8.0 manual ("Deploying Group Replication in Single-Primary
 * Mode") and the usual Docker recipes for it:
 *   - every member: its own server_id, gtid_mode=ON, enforce_gtid_consistency=ON,
 *     binlog_checksum=NONE (required before 8.0.21, harmless after), the plugin loaded with
 *     plugin-load-add, group_replication_start_on_boot=OFF so nothing starts before the
 *     accounts exist; the group_replication_* options carry the `loose-` prefix because the
 *     image's entrypoint runs the server once before the plugin options mean anything to it
 *     (`mysqld --verbose --help`, then a temporary server for its own initialisation);
 *   - report_host = the member's network alias: a joiner's distributed recovery connects to
 *     the donor's MEMBER_HOST:MEMBER_PORT, and only the aliases resolve on the network;
 *   - the recovery account on every member outside the binary log (SQL_LOG_BIN=0, as the
 *     manual does it), its credentials stored with CHANGE REPLICATION SOURCE ... FOR CHANNEL
 *     'group_replication_recovery'; it is caching_sha2_password (8.0's default), so the
 *     recovery channel fetches the RSA key (group_replication_recovery_get_public_key=ON)
 *     instead of needing TLS;
 *   - gr1 bootstraps (group_replication_bootstrap_group ON, START, OFF again), then the
 *     proxy's accounts and the app database are created on it (so they reach the others by
 *     recovery, as any data does), then gr2 and gr3 join one at a time.
 * group_replication_member_expel_timeout=0: a killed member is expelled as soon as the group
 * suspects it (about 5 s after it stops answering) instead of 5 s later, so the failover
 * scenario waits less; it changes nothing else the tests look at.
 */

export const MYSQL8_IMAGE = process.env.SWITCHYARD_TEST_MYSQL8_IMAGE ?? 'mysql:8.0';
/** XCom's port inside each container (group_replication_local_address). */
export const GR_PORT = 33061;
const MYSQL_PORT = 3306;

export interface Mysql8Member {
  name: string;
  host: string;
  /** The member's 3306 published on 127.0.0.1 of this host. */
  port: number;
  serverId: number;
}

export interface Account {
  user: string;
  password: string;
}

export interface Mysql8GroupInfo {
  image: string;
  /** group_replication_group_name. */
  groupName: string;
  members: Mysql8Member[];
  database: string;
  users: {
    root: Account;
    /** What clients log in to the proxy as: caching_sha2_password, ALL on the database. */
    app: Account;
    /** The proxy's monitoring login (its cluster's first user): REPLICATION CLIENT, SELECT on performance_schema. */
    monitor: Account;
    /** Distributed recovery. */
    repl: Account;
  };
}

/** One row of performance_schema.replication_group_members as a member lists it. */
export interface GroupMemberView {
  MEMBER_ID: string;
  MEMBER_HOST: string;
  MEMBER_PORT: number | null;
  MEMBER_STATE: string;
  MEMBER_ROLE: string;
}

export const MEMBER_NAMES = ['gr1', 'gr2', 'gr3'] as const;

/** Server options for one member (the image's entrypoint runs mysqld with them). Pure. */
export function memberOptions(name: string, serverId: number, names: readonly string[], groupName: string): string[] {
  return [
    `--server-id=${serverId}`,
    `--report-host=${name}`,
    `--report-port=${MYSQL_PORT}`,
    '--gtid-mode=ON',
    '--enforce-gtid-consistency=ON',
    '--binlog-checksum=NONE',
    '--log-bin=binlog',
    '--plugin-load-add=group_replication.so',
    '--loose-group-replication-start-on-boot=OFF',
    '--loose-group-replication-bootstrap-group=OFF',
    `--loose-group-replication-group-name=${groupName}`,
    `--loose-group-replication-local-address=${name}:${GR_PORT}`,
    `--loose-group-replication-group-seeds=${names.map((n) => `${n}:${GR_PORT}`).join(',')}`,
    '--loose-group-replication-single-primary-mode=ON',
    '--loose-group-replication-enforce-update-everywhere-checks=OFF',
    '--loose-group-replication-recovery-get-public-key=ON',
    '--loose-group-replication-member-expel-timeout=0',
    // Three servers share the machine: small buffers, no fsync per commit (the group is the durability here).
    '--innodb-buffer-pool-size=64M',
    '--innodb-flush-log-at-trx-commit=2',
    '--sync-binlog=0',
    '--performance-schema=ON',
    '--max-connections=300',
  ];
}

/**
 * What every member runs before it starts Group Replication, as root, in order. Pure.
 *   1. no GTIDs of its own image setup (a joiner holding transactions the group lacks is refused);
 *   2. the recovery account, outside the binary log (each member has its own, none replicates);
 *   3. the recovery channel's credentials.
 * The first statement of step 1 is for 8.0 (8.4 removed it): see resetSql().
 */
export function memberPrepareSql(repl: Account): string[] {
  return [
    'SET SQL_LOG_BIN = 0',
    `CREATE USER '${repl.user}'@'%' IDENTIFIED WITH caching_sha2_password BY '${repl.password}'`,
    `GRANT REPLICATION SLAVE, CONNECTION_ADMIN, BACKUP_ADMIN ON *.* TO '${repl.user}'@'%'`,
    'SET SQL_LOG_BIN = 1',
    `CHANGE REPLICATION SOURCE TO SOURCE_USER = '${repl.user}', SOURCE_PASSWORD = '${repl.password}' FOR CHANNEL 'group_replication_recovery'`,
  ];
}

/** RESET MASTER (8.0) and its 8.4 name, tried in this order. */
export const RESET_SQL = ['RESET MASTER', 'RESET BINARY LOGS AND GTIDS'] as const;

/** The proxy's accounts and database, created on the bootstrapped member (they replicate). Pure. */
export function accountsSql(info: Pick<Mysql8GroupInfo, 'database' | 'users'>): string[] {
  const { app, monitor } = info.users;
  return [
    `CREATE DATABASE ${info.database}`,
    // caching_sha2_password is MySQL 8's default; named here so an image with another default still tests it.
    `CREATE USER '${app.user}'@'%' IDENTIFIED WITH caching_sha2_password BY '${app.password}'`,
    `GRANT ALL PRIVILEGES ON ${info.database}.* TO '${app.user}'@'%'`,
    `CREATE USER '${monitor.user}'@'%' IDENTIFIED WITH caching_sha2_password BY '${monitor.password}'`,
    `GRANT REPLICATION CLIENT ON *.* TO '${monitor.user}'@'%'`,
    `GRANT SELECT ON performance_schema.* TO '${monitor.user}'@'%'`,
  ];
}

/**
 * The group's PRIMARY as one member lists it, by member name (MEMBER_HOST is the report_host,
 * which is the member's name), or null: no ONLINE PRIMARY, or one that is none of `names`. Pure.
 */
export function primaryOf(rows: readonly GroupMemberView[], names: readonly string[]): string | null {
  const p = rows.find((r) => r.MEMBER_ROLE.toUpperCase() === 'PRIMARY' && r.MEMBER_STATE.toUpperCase() === 'ONLINE');
  return p && names.includes(p.MEMBER_HOST) ? p.MEMBER_HOST : null;
}

/** The text of a non-TTY container's log (Docker's 8-byte frame headers removed). Pure. */
export function demuxDockerLog(buf: Buffer): string {
  let out = '';
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2) && buf[i + 1] === 0 && buf[i + 2] === 0 && buf[i + 3] === 0) {
    const len = buf.readUInt32BE(i + 4);
    out += buf.subarray(i + 8, i + 8 + len).toString('utf8');
    i += 8 + len;
  }
  // Not framed (a TTY container), or trailing bytes: keep them as they are.
  return out + buf.subarray(i).toString('utf8');
}

/** Per member, statements whose digest names the marker table, from events_statements_summary_by_digest. */
export interface StatementCounts {
  selects: number;
  inserts: number;
}

type Testcontainers = typeof import('testcontainers');
type Started = import('testcontainers').StartedTestContainer;

/** A 3-member MySQL 8 Group Replication group in containers. Always `stop()` it. */
export class Mysql8Group {
  private readonly containers = new Map<string, Started>();
  private network: import('testcontainers').StartedNetwork | null = null;
  private tc: Testcontainers | null = null;
  /** Members whose container was killed: no longer queried. */
  private readonly killed = new Set<string>();

  private constructor(readonly info: Mysql8GroupInfo) {}

  /**
   * 1. the network, then the three containers (in parallel: each one's first start initialises
   *    a data directory, ~20-40 s);
   * 2. on each: RESET MASTER, the recovery account and channel credentials;
   * 3. bootstrap gr1, wait until it is the ONLINE PRIMARY and writable; the proxy's accounts;
   * 4. gr2, then gr3: START GROUP_REPLICATION, wait until ONLINE;
   * 5. wait until every member lists three ONLINE members.
   * Anything failing tears everything down, with the members' last log lines in the error.
   */
  static async start(opts: { image?: string; log?: (line: string) => void } = {}): Promise<Mysql8Group> {
    const log = opts.log ?? ((line: string) => console.log(`[mysql8-group] ${line}`));
    const image = opts.image ?? MYSQL8_IMAGE;
    const members: Mysql8Member[] = [];
    for (const [i, name] of MEMBER_NAMES.entries()) members.push({ name, host: '127.0.0.1', port: await freePort(), serverId: i + 1 });
    const group = new Mysql8Group({
      image,
      groupName: randomUUID(),
      members,
      database: 'app',
      users: {
        root: { user: 'root', password: 'root' },
        app: { user: 'app', password: 'app_sha2_pw' },
        monitor: { user: 'sy_monitor', password: 'monitor_sha2_pw' },
        repl: { user: 'gr_repl', password: 'gr_repl_pw' },
      },
    });
    const t0 = Date.now();
    try {
      await group.startContainers(log);
      log(`containers up in ${Date.now() - t0} ms (${image})`);
      for (const m of members) await group.prepareMember(m.name);
      const [first, ...joiners] = members;
      await group.query(first!.name, 'SET GLOBAL group_replication_bootstrap_group = ON; START GROUP_REPLICATION; SET GLOBAL group_replication_bootstrap_group = OFF');
      await until(async () => {
        const [me] = await group.ownRow(first!.name);
        const [ro] = await group.query<{ sro: number }>(first!.name, 'SELECT @@global.super_read_only AS sro');
        if (me?.MEMBER_STATE !== 'ONLINE' || me.MEMBER_ROLE !== 'PRIMARY' || Number(ro?.sro) !== 0) throw new Error(`bootstrap: ${JSON.stringify(me)}, super_read_only ${ro?.sro}`);
      }, 60_000, `bootstrap ${first!.name}`, 250);
      await group.query(first!.name, accountsSql(group.info).join('; '));
      for (const j of joiners) {
        await group.startMember(j.name);
        log(`${j.name} ONLINE after ${Date.now() - t0} ms`);
      }
      await until(async () => {
        for (const m of members) {
          const rows = await group.members(m.name);
          const online = rows.filter((r) => r.MEMBER_STATE === 'ONLINE').length;
          if (online !== members.length) throw new Error(`${m.name} lists ${online} ONLINE: ${JSON.stringify(rows)}`);
        }
      }, 60_000, 'every member lists the whole group ONLINE', 250);
      log(`group ${group.info.groupName} ONLINE (primary ${await group.primaryName()}) after ${Date.now() - t0} ms`);
      return group;
    } catch (e) {
      const tails = await group.logTails(30);
      await group.stop();
      throw new Error(`MySQL 8 group did not start: ${(e as Error).message}\n${tails}`);
    }
  }

  /** One container per member on a fresh user-defined network (aliases resolve only there); ports on 127.0.0.1 only. */
  private async startContainers(log: (line: string) => void): Promise<void> {
    // Loaded here, not at import: the unit tests of the pure helpers above need no engine.
    const tc = await import('testcontainers');
    this.tc = tc;
    this.network = await new tc.Network().start();
    const names = this.info.members.map((m) => m.name);
    const results = await Promise.allSettled(
      this.info.members.map(async (m) => {
        const started = await loopbackOnly(tc, this.info.image)
          .withNetwork(this.network!)
          .withNetworkAliases(m.name)
          .withHostname(m.name)
          .withLabels({ 'switchyard.test': 'mysql8-group', 'switchyard.test.group': this.info.groupName })
          .withEnvironment({ MYSQL_ROOT_PASSWORD: this.info.users.root.password, MYSQL_ROOT_HOST: '%', MYSQL_INITDB_SKIP_TZINFO: '1' })
          .withCommand(memberOptions(m.name, m.serverId, names, this.info.groupName))
          .withExposedPorts({ container: MYSQL_PORT, host: m.port })
          // The entrypoint's temporary server says "port: 0"; only the real one listens on 3306.
          .withWaitStrategy(tc.Wait.forLogMessage(/ready for connections.*port: 3306/))
          .withStartupTimeout(300_000)
          .start();
        this.containers.set(m.name, started);
        await until(() => this.query(m.name, 'SELECT 1'), 60_000, `${m.name} answers SQL`, 250);
      }),
    );
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${names[i]}: ${(r.reason as Error)?.message ?? r.reason}`] : []));
    if (failed.length > 0) throw new Error(`containers did not start: ${failed.join('; ')}`);
    log(`members on 127.0.0.1: ${this.info.members.map((m) => `${m.name}=${m.port}`).join(' ')}`);
  }

  private async prepareMember(name: string): Promise<void> {
    let reset: unknown = null;
    for (const sql of RESET_SQL) {
      try {
        await this.query(name, sql);
        reset = null;
        break;
      } catch (e) {
        reset = e;
      }
    }
    if (reset) throw reset;
    await this.query(name, memberPrepareSql(this.info.users.repl).join('; '));
  }

  member(name: string): Mysql8Member {
    const m = this.info.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  /** Members whose container still runs. */
  alive(): Mysql8Member[] {
    return this.info.members.filter((m) => !this.killed.has(m.name));
  }

  /** SQL as root over TCP (several statements allowed). */
  async query<R = Record<string, unknown>>(name: string, sql: string, params: unknown[] = []): Promise<R[]> {
    const m = this.member(name);
    const { user, password } = this.info.users.root;
    const c = await mysql.createConnection({ host: m.host, port: m.port, user, password, multipleStatements: true, connectTimeout: 5000 });
    try {
      const [rows] = await c.query(sql, params);
      return rows as R[];
    } finally {
      await c.end().catch(() => c.destroy());
    }
  }

  /** replication_group_members as `name` lists it (its own view: a member that left lists only itself). */
  async members(name: string): Promise<GroupMemberView[]> {
    return this.query<GroupMemberView>(name, 'SELECT MEMBER_ID, MEMBER_HOST, MEMBER_PORT, MEMBER_STATE, MEMBER_ROLE FROM performance_schema.replication_group_members');
  }

  /** `name`'s own row (MEMBER_ID = its @@server_uuid), in a one-element list, or an empty one. */
  async ownRow(name: string): Promise<GroupMemberView[]> {
    return this.query<GroupMemberView>(
      name,
      'SELECT MEMBER_ID, MEMBER_HOST, MEMBER_PORT, MEMBER_STATE, MEMBER_ROLE FROM performance_schema.replication_group_members WHERE MEMBER_ID = @@global.server_uuid',
    );
  }

  /** The PRIMARY as the first live member that is itself ONLINE lists it; null when none lists one. */
  async primaryName(): Promise<string | null> {
    const names = this.info.members.map((m) => m.name);
    for (const m of this.alive()) {
      try {
        const rows = await this.members(m.name);
        const me = rows.find((r) => r.MEMBER_HOST === m.name);
        if (me?.MEMBER_STATE !== 'ONLINE') continue;
        return primaryOf(rows, names);
      } catch {
        // Unreachable right now: ask the next one.
      }
    }
    return null;
  }

  /** STOP GROUP_REPLICATION: the member leaves (OFFLINE in its own view, gone from the others'), super_read_only ON. */
  async stopMember(name: string): Promise<void> {
    await this.query(name, 'STOP GROUP_REPLICATION');
  }

  /** START GROUP_REPLICATION (the stored recovery credentials) and wait until the member is ONLINE again. */
  async startMember(name: string, timeoutMs = 120_000): Promise<void> {
    await this.query(name, 'START GROUP_REPLICATION');
    await until(async () => {
      const [me] = await this.ownRow(name);
      if (me?.MEMBER_STATE !== 'ONLINE') throw new Error(`${name} is ${me?.MEMBER_STATE ?? 'not listed'}`);
    }, timeoutMs, `${name} ONLINE`, 250);
  }

  /** docker kill -s KILL on the member's container: mysqld dies at once, as in a crash or power loss. */
  async killMember(name: string): Promise<void> {
    const c = this.containers.get(name);
    if (!c || !this.tc) throw new Error(`no container for ${name}`);
    const client = await this.tc.getContainerRuntimeClient();
    await client.container.getById(c.getId()).kill({ signal: 'SIGKILL' });
    this.killed.add(name);
    for (const deadline = Date.now() + 15_000; ; await sleep(100)) {
      const st = await client.container.inspect(client.container.getById(c.getId()));
      if (!st.State.Running) return;
      if (Date.now() > deadline) throw new Error(`${name}: container still running 15 s after SIGKILL`);
    }
  }

  /** Waits until every live ONLINE member has applied what `from` has executed (GTID_SUBSET). */
  async sync(from: string, timeoutMs = 30_000): Promise<void> {
    const [{ g }] = (await this.query<{ g: string }>(from, 'SELECT @@global.gtid_executed AS g')) as [{ g: string }];
    for (const m of this.alive()) {
      if (m.name === from) continue;
      const [me] = await this.ownRow(m.name);
      if (me?.MEMBER_STATE !== 'ONLINE') continue;
      await until(async () => {
        const [r] = await this.query<{ ok: number }>(m.name, 'SELECT GTID_SUBSET(?, @@global.gtid_executed) AS ok', [g]);
        if (Number(r?.ok) !== 1) throw new Error(`${m.name} has not applied ${g}`);
      }, timeoutMs, `${m.name} applies ${from}'s transactions`, 50);
    }
  }

  /**
   * Per live member: statements whose normalised text names `table`, from
   * performance_schema.events_statements_summary_by_digest (cumulative since the server
   * started: take deltas). The monitor's probes never name it, and a secondary applies the
   * group's row events without running statements, so these are the clients' statements only.
   */
  async statementCounts(table: string): Promise<Record<string, StatementCounts>> {
    const out: Record<string, StatementCounts> = {};
    for (const m of this.alive()) {
      const [r] = await this.query<{ s: string | number | null; i: string | number | null }>(
        m.name,
        `SELECT SUM(IF(DIGEST_TEXT LIKE 'SELECT%', COUNT_STAR, 0)) AS s, SUM(IF(DIGEST_TEXT LIKE 'INSERT%', COUNT_STAR, 0)) AS i
           FROM performance_schema.events_statements_summary_by_digest WHERE DIGEST_TEXT LIKE ?`,
        [`%\`${table}\`%`],
      );
      out[m.name] = { selects: Number(r?.s ?? 0), inserts: Number(r?.i ?? 0) };
    }
    return out;
  }

  /** The last `lines` log lines of every member, for an error message. Never throws. */
  async logTails(lines: number): Promise<string> {
    if (!this.tc) return '';
    const parts: string[] = [];
    try {
      const client = await this.tc.getContainerRuntimeClient();
      for (const [name, c] of this.containers) {
        try {
          const buf = await client.container.getById(c.getId()).logs({ stdout: true, stderr: true, tail: lines, follow: false });
          parts.push(`--- ${name} ---\n${demuxDockerLog(buf).trimEnd()}`);
        } catch (e) {
          parts.push(`--- ${name}: no log (${(e as Error).message})`);
        }
      }
    } catch {
      // No engine any more: nothing to show.
    }
    return parts.join('\n');
  }

  /** Removes every container (killed ones too) and the network. Never throws; safe to call twice. */
  async stop(): Promise<void> {
    if (this.tc && this.containers.size > 0) {
      try {
        const client = await this.tc.getContainerRuntimeClient();
        // force: a running container is killed first; a killed one (exited) is removed as it is.
        await Promise.all([...this.containers.values()].map((c) => client.container.getById(c.getId()).remove({ force: true, v: true }).catch(() => undefined)));
      } catch {
        // No engine any more: testcontainers' Ryuk removes the session's containers when it notices.
      }
    }
    this.containers.clear();
    await this.network?.stop().catch(() => undefined);
    this.network = null;
  }
}

/** A GenericContainer whose published ports bind 127.0.0.1 only (testcontainers binds every interface). */
function loopbackOnly(tc: Testcontainers, image: string): import('testcontainers').GenericContainer {
  class LoopbackContainer extends tc.GenericContainer {
    protected override async beforeContainerCreated(): Promise<void> {
      const bindings = this.hostConfig.PortBindings as Record<string, { HostIp?: string; HostPort?: string }[]> | undefined;
      for (const list of Object.values(bindings ?? {})) for (const b of list) b.HostIp = '127.0.0.1';
    }
  }
  return new LoopbackContainer(image);
}
