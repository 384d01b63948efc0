import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import type { ClusterConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { buildSnapshot, nextHealth, pushSample, type NodeHealth, type NodeProbe } from './decide.js';
import { formatGtidPos, gtidCovers, gtidMax, gtidTotal, gtidWatermark, parseMariaGtidPos, parseMysqlGtidSet, type GtidPos, type GtidSample } from './gtid.js';
import type { TopologyHolder } from './holder.js';
import { monitorLoginChanged } from './monitor-login.js';
import { refineWithGtid } from './mysql-decide.js';
import { judgeGroupMember, secondaryPrimaries, unconfiguredMembers, type GroupMemberRow, type GroupedNode } from './mysql-group.js';

/** What one monitoring connection knows about its server, learnt once at connect. */
interface Monitored {
  conn: mysql.Connection;
  flavor: 'mariadb' | 'mysql';
  /** Replica status statement, or null when the login may not run it (then there is no Seconds_Behind_Master). */
  statusSql: string | null;
  /** MySQL with the group_replication plugin loaded: the node's @@server_uuid, to find itself among the members. */
  groupSelf: string | null;
}

interface GtidProbe extends NodeProbe {
  gtid?: GtidPos | null;
  secondsBehind?: number | null;
  /** The replication IO thread is connected to a source. */
  replicating?: boolean;
  /** In a running replication group (mysql-group.ts judgeGroupMember). */
  group?: { name: string; state: string; role: string; multiPrimary: boolean };
}

const MARIADB_PROBE = 'SELECT @@global.read_only AS ro, @@global.gtid_binlog_pos AS bpos, @@global.gtid_current_pos AS cpos';
const MYSQL_PROBE = 'SELECT @@global.read_only AS ro, @@global.super_read_only AS sro, @@global.gtid_executed AS gexec, @@global.gtid_mode AS gmode';
const GROUP_MEMBERS = 'SELECT MEMBER_ID AS id, MEMBER_HOST AS host, MEMBER_PORT AS port, MEMBER_STATE AS state, MEMBER_ROLE AS role, @@global.group_replication_group_name AS gname FROM performance_schema.replication_group_members';

/**
 * Probes every node of a MySQL/MariaDB cluster each health.interval over one
 * dedicated monitoring connection per node (re-opened when it breaks), and
 * publishes the same TopologySnapshot as PgTopologyMonitor, through the same
 * decide.ts functions. The monitoring login is the cluster's first user.
 *
 * Per probe (two statements on one connection):
 *   - role: writable when read_only (and MySQL's super_read_only) is off;
 *   - position (GTIDs applied): MariaDB gtid_current_pos, joined on a writable
 *     node with gtid_binlog_pos (what it has committed, also with
 *     log_slave_updates off); MySQL gtid_executed;
 *   - replica status: Seconds_Behind_Master (a cross-check, see
 *     mysql-decide.ts) and whether the IO thread is connected.
 * Lag in "bytes" is in transactions (gtid.ts gtidDistance); lag in seconds
 * comes from the primary's position history, as for PostgreSQL.
 *
 * MySQL Group Replication (plugin loaded, node in a running group): the
 * node's own row in performance_schema.replication_group_members decides as
 * well (mysql-group.ts): not ONLINE or without quorum = down at once; the
 * PRIMARY is the writable one; in multi-primary mode the first configured
 * ONLINE member takes the writes and the others are read from.
 */
export class MysqlTopologyMonitor {
  private readonly clients = new Map<string, Promise<Monitored>>();
  private readonly health = new Map<string, NodeHealth>();
  private readonly positions = new Map<string, GtidPos | null>();
  private readonly secondsBehind = new Map<string, number | null>();
  private readonly replicating = new Map<string, boolean>();
  private history: GtidSample[] = [];
  private readonly drained = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private version = 0;
  private running = false;
  private stopped = false;
  /** Nodes whose probe is still running (a hung node's lasts up to health.timeout). */
  private readonly inflight = new Set<string>();
  /** Nodes whose monitoring login a reload changed while a probe ran on it: re-opened when that probe ends. */
  private readonly reopen = new Set<string>();
  /** Probes that finished since the last round applied them, with when each started. */
  private readonly done: { probe: GtidProbe; startedAt: number }[] = [];
  /** Per node, when its last successful probe started: its position was read after that. */
  private readonly probedAt = new Map<string, number>();
  /** Per node, its group membership from its last good probe (absent: in no group). */
  private readonly groups = new Map<string, NonNullable<GtidProbe['group']>>();
  /** Group members already logged as missing from the config (logged once each). */
  private readonly unconfiguredLogged = new Set<string>();

  constructor(
    private config: ClusterConfig,
    private readonly holder: TopologyHolder,
    private readonly log: Logger,
  ) {}

  start(): void {
    void this.round();
  }

  /** Apply a reloaded config (node set, health settings). */
  update(config: ClusterConfig): void {
    const before = this.config;
    this.config = config;
    // A removed node's monitoring connection closes; one whose address or login changed re-opens
    // for the next probe (a probe running on it finishes first, so the reload costs no failed check).
    for (const name of [...this.clients.keys()]) {
      if (!monitorLoginChanged(before, config, name)) continue;
      if (this.inflight.has(name) && config.nodes.some((n) => n.name === name)) this.reopen.add(name);
      else this.dropClient(name);
    }
    // Weights, node set and budgets are config, not probe results: publish them now, so a
    // reload is in effect when it answers (waiting for the next round cost up to a second each).
    this.publish();
  }

  setDrained(node: string, drained: boolean): void {
    if (drained) this.drained.add(node);
    else this.drained.delete(node);
    this.publish();
  }

  /** A connection to `node` failed on the hot path: a refused check, so the node is down now. */
  reportFailure(node: string, error: string): void {
    const before = this.health.get(node);
    if (!before?.up) return;
    const after = nextHealth(before, { name: node, ok: false, refused: true, error }, this.config.health.fall, this.config.health.rise);
    this.health.set(node, after);
    if (!after.up) {
      this.log.warn({ node, error }, 'node is down (connection failed on the hot path)');
      this.publish();
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const name of [...this.clients.keys()]) this.dropClient(name);
  }

  /**
   * One probe round, as PgTopologyMonitor's: 1. start a probe on every node
   * that has none running, 2. wait for them at most one interval (a hung
   * node's result lands in a later round), 3. apply what finished, 4. publish,
   * 5. schedule the next round.
   */
  private async round(): Promise<void> {
    if (this.stopped || this.running) return;
    this.running = true;
    const started = Date.now();
    const interval = this.config.health.interval;
    try {
      const mine: Promise<void>[] = [];
      for (const n of this.config.nodes) {
        if (this.inflight.has(n.name)) continue;
        this.inflight.add(n.name);
        const startedAt = Date.now();
        mine.push(
          this.probe(n.name).then((probe) => {
            this.inflight.delete(n.name);
            if (this.reopen.delete(n.name)) this.dropClient(n.name);
            this.done.push({ probe, startedAt });
          }),
        );
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(mine), new Promise<void>((r) => (timer = setTimeout(r, interval)))]);
      clearTimeout(timer);
      for (const { probe, startedAt } of this.done.splice(0)) this.apply(probe, startedAt);
      this.publish();
    } finally {
      this.running = false;
      if (!this.stopped) {
        const wait = Math.max(0, interval - (Date.now() - started));
        this.timer = setTimeout(() => void this.round(), wait);
        this.timer.unref();
      }
    }
  }

  private apply(p: GtidProbe, startedAt: number): void {
    if (!this.config.nodes.some((n) => n.name === p.name)) return;
    const { fall, rise } = this.config.health;
    const before = this.health.get(p.name);
    const after = nextHealth(before, p, fall, rise);
    if (this.log.isLevelEnabled('trace')) this.log.trace({ node: p.name, ok: p.ok, writable: p.writable, error: p.error, gtid: p.gtid ? formatGtidPos(p.gtid) : null, up: after.up }, 'probe');
    if (before && before.up !== after.up) this.log.warn({ node: p.name, up: after.up, error: p.error }, after.up ? 'node is up' : 'node is down');
    if (before && before.role !== after.role && after.role !== 'unknown') this.log.info({ node: p.name, role: after.role }, 'node role changed');
    this.health.set(p.name, after);
    if (p.group) this.groups.set(p.name, p.group);
    else if (p.ok) this.groups.delete(p.name);
    if (!p.ok) return;
    this.probedAt.set(p.name, startedAt);
    this.positions.set(p.name, p.gtid ?? null);
    this.secondsBehind.set(p.name, p.secondsBehind ?? null);
    const was = this.replicating.get(p.name) ?? false;
    this.replicating.set(p.name, p.replicating ?? false);
    // A writable node that replicates from a source is a replica someone left writable: it counts as
    // writable (so two of them are a split brain and writes stop), and the log says why.
    if (p.writable && p.replicating && !was) this.log.warn({ node: p.name }, 'node is writable (read_only=OFF) but replicates from a source; set read_only=ON on replicas');
  }

  /**
   * 1. Find the primary (roles do not depend on positions). 2. Record its GTID
   * position in the history. 3. Map every node's GTID position onto decide.ts's
   * single position (primary: sum of sequence numbers; replica: watermark in
   * the history). 4. Build the snapshot and refine it with exact GTID lag.
   */
  private publish(): void {
    const now = Date.now();
    const inputs = this.inputs();
    const roles = this.groupRoles();
    const primary = buildSnapshot(inputs, roles, [], this.version, now).primary;
    const prev = this.holder.current();
    if (primary) {
      const gtid = this.positions.get(primary);
      if (gtid) this.record(gtid, now);
    }
    const health = new Map<string, NodeHealth>();
    for (const [name, h] of roles) {
      const gtid = this.positions.get(name) ?? null;
      const position = gtid === null ? null : name === primary ? gtidTotal(gtid) : gtidWatermark(this.history, gtid);
      health.set(name, { ...h, position });
    }
    this.version++;
    const sampledAt = primary ? (this.probedAt.get(primary) ?? 0) : 0;
    const snap = refineWithGtid(buildSnapshot(inputs, health, this.history, this.version, now, sampledAt), {
      positions: this.positions,
      secondsBehind: this.secondsBehind,
      history: this.history,
    });
    const withGroups = this.groups.size === 0 ? snap : { ...snap, nodes: snap.nodes.map((n) => this.withGroup(n)) };
    if (prev.primary !== snap.primary && prev.version > 0) this.log.warn({ from: prev.primary, to: snap.primary }, 'primary changed');
    if (snap.splitBrain && !prev.splitBrain) this.log.error({ cluster: this.config.name }, 'split brain: more than one writable node; writes are refused');
    this.holder.publish(withGroups);
  }

  /** Health with the writable members of a multi-primary group other than the write target counted as replicas. */
  private groupRoles(): ReadonlyMap<string, NodeHealth> {
    if (this.groups.size === 0) return this.health;
    const grouped: GroupedNode[] = this.config.nodes.map((n) => {
      const g = this.groups.get(n.name);
      const h = this.health.get(n.name);
      return { name: n.name, group: g?.name ?? null, writable: h?.up === true && h.role === 'primary', multiPrimary: g?.multiPrimary ?? false };
    });
    const demoted = secondaryPrimaries(grouped);
    if (demoted.size === 0) return this.health;
    const out = new Map(this.health);
    for (const name of demoted) out.set(name, { ...out.get(name)!, role: 'replica' });
    return out;
  }

  private withGroup<N extends { name: string }>(n: N): N {
    const g = this.groups.get(n.name);
    return g ? { ...n, groupReplication: { state: g.state, role: g.role, multiPrimary: g.multiPrimary } } : n;
  }

  /**
   * Adds the primary's position to the history. The history must be a chain
   * (each sample contains the earlier ones) for the watermark to be exact; a
   * primary that lacks transactions of the last sample (a failover that lost
   * some, RESET MASTER) starts a new history.
   */
  private record(gtid: GtidPos, now: number): void {
    const last = this.history[this.history.length - 1];
    if (last && !gtidCovers(gtid, last.gtid)) {
      this.log.warn({ last: formatGtidPos(last.gtid), now: formatGtidPos(gtid) }, "the primary's GTID position does not contain the last one seen; lag history restarts");
      this.history = [];
    }
    const sample: GtidSample = { at: now, position: gtidTotal(gtid), gtid };
    pushSample(this.history, sample, Math.max(60_000, 10 * this.config.routing.max_replica_lag.time));
  }

  private inputs() {
    const roles = this.config.roles;
    return {
      cluster: this.config.name,
      nodes: this.config.nodes,
      staticPrimary: roles === 'auto' ? null : roles.primary,
      fall: this.config.health.fall,
      rise: this.config.health.rise,
      drained: this.drained,
    };
  }

  private async probe(name: string): Promise<GtidProbe> {
    const timeout = this.config.health.timeout;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.query(name),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeout}ms`)), timeout);
        }),
      ]);
    } catch (e) {
      // A hung or broken monitoring connection is replaced on the next round.
      this.dropClient(name);
      const refused = (e as { code?: string }).code === 'ECONNREFUSED';
      return { name, ok: false, refused, error: (e as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  private async query(name: string): Promise<GtidProbe> {
    const m = await this.connect(name);
    const [rows] = await m.conn.query<mysql.RowDataPacket[]>(m.flavor === 'mariadb' ? MARIADB_PROBE : MYSQL_PROBE);
    const row = rows[0]!;
    let writable = Number(row.ro) === 0 && (m.flavor === 'mariadb' || Number(row.sro) === 0);
    let group: GtidProbe['group'];
    if (m.groupSelf !== null) {
      const [members] = await m.conn.query<mysql.RowDataPacket[]>(GROUP_MEMBERS);
      const view = {
        self: m.groupSelf,
        group: String(members[0]?.gname ?? ''),
        members: members.map((r): GroupMemberRow => ({ id: String(r.id ?? ''), host: String(r.host ?? ''), port: Number(r.port ?? 0), state: String(r.state ?? ''), role: String(r.role ?? '') })),
      };
      const verdict = judgeGroupMember(view);
      if (verdict.inGroup) {
        this.logUnconfigured(view);
        // A member in ERROR, RECOVERING or a minority partition is certain not to serve current
        // data: out at once (as a refused connection is), not after `fall` rounds of stale reads.
        group = { name: view.group, state: verdict.state!, role: verdict.role!, multiPrimary: verdict.multiPrimary };
        if (!verdict.ok) return { name, ok: false, refused: true, error: verdict.error, group };
        // Both must agree: during an election the new PRIMARY is listed before super_read_only is off.
        writable = writable && verdict.writable;
      }
    }
    let gtid: GtidPos | null = null;
    try {
      if (m.flavor === 'mariadb') {
        const current = parseMariaGtidPos(String(row.cpos ?? ''));
        gtid = writable ? gtidMax(current, parseMariaGtidPos(String(row.bpos ?? ''))) : current;
      } else if (String(row.gmode).toUpperCase() === 'ON') {
        gtid = parseMysqlGtidSet(String(row.gexec ?? ''));
      }
    } catch (e) {
      // An unreadable position is unknown lag (the replica is not read from), not a dead node.
      this.log.warn({ node: name, err: (e as Error).message }, 'cannot read the GTID position');
    }
    let secondsBehind: number | null = null;
    let replicating = false;
    // A group member's replication channels are the group's own applier and recovery: they are not
    // a source it lags behind, and a writable member "replicating" through them is normal.
    if (m.statusSql && !group) {
      const [status] = await m.conn.query<mysql.RowDataPacket[]>(m.statusSql);
      const s = status[0];
      if (s) {
        const sbm = s.Seconds_Behind_Master ?? s.Seconds_Behind_Source;
        secondsBehind = sbm === null || sbm === undefined ? null : Number(sbm);
        replicating = String(s.Slave_IO_Running ?? s.Replica_IO_Running) === 'Yes';
      }
    }
    return { name, ok: true, writable, position: null, gtid, secondsBehind, replicating, ...(group ? { group } : {}) };
  }

  private logUnconfigured(view: { self: string; group: string; members: readonly GroupMemberRow[] }): void {
    for (const m of unconfiguredMembers({ ...view }, this.config.nodes)) {
      if (this.unconfiguredLogged.has(m.id)) continue;
      this.unconfiguredLogged.add(m.id);
      this.log.warn({ cluster: this.config.name, member: `${m.host}:${m.port}`, state: m.state, role: m.role }, 'a group replication member is not in the config; it gets no traffic');
    }
  }

  /** The node's monitoring connection, opened (and its server's flavor learnt) when there is none. */
  private connect(name: string): Promise<Monitored> {
    const have = this.clients.get(name);
    if (have) return have;
    const p = this.open(name);
    this.clients.set(name, p);
    p.then(
      (m) => m.conn.on('error', () => this.clients.get(name) === p && this.dropClient(name)),
      () => this.clients.get(name) === p && this.clients.delete(name),
    );
    return p;
  }

  private async open(name: string): Promise<Monitored> {
    const node = this.config.nodes.find((n) => n.name === name)!;
    const user = this.config.users[0]!;
    const tlsCfg = this.config.backend_tls;
    // backend_tls as the pools apply it (src/backend/tls-options.ts): verify-full checks the CA and
    // the node's name or IP, require and prefer encrypt without checking.
    const verify = tlsCfg.mode === 'verify-full';
    const options = (ssl: mysql.SslOptions | undefined): mysql.ConnectionOptions => ({
      host: node.host,
      port: node.port,
      user: user.name,
      password: user.password,
      connectTimeout: this.config.health.timeout,
      connectAttributes: { program_name: 'switchyard-monitor' },
      supportBigNumbers: true,
      bigNumberStrings: true,
      ssl,
    });
    const ssl = tlsCfg.mode === 'disable' ? undefined : { rejectUnauthorized: verify, verifyIdentity: verify, ...(tlsCfg.ca ? { ca: readFileSync(tlsCfg.ca) } : {}) };
    let conn: mysql.Connection;
    try {
      conn = await mysql.createConnection(options(ssl));
    } catch (e) {
      // prefer: a node without TLS is monitored in plain text, as the pools connect to it.
      if (tlsCfg.mode !== 'prefer' || (e as { code?: string }).code !== 'HANDSHAKE_NO_SSL_SUPPORT') throw e;
      conn = await mysql.createConnection(options(undefined));
    }
    // The connect is bounded by connectTimeout; these first statements get the same bound, because a
    // connection nobody holds yet cannot be closed by dropClient and would leak while the node hangs.
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.config.health.timeout}ms`)), this.config.health.timeout);
    });
    hung.catch(() => undefined);
    try {
      return await Promise.race([this.learn(name, conn), hung]);
    } catch (e) {
      conn.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The server's flavour and the replica status statement the login may run. */
  private async learn(name: string, conn: mysql.Connection): Promise<Monitored> {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@version AS v');
    const flavor = /mariadb/i.test(String(rows[0]?.v)) ? 'mariadb' : 'mysql';
    let statusSql: string | null = null;
    // MySQL 8.0.22+ renamed the statement; MariaDB accepts the old name everywhere.
    for (const sql of flavor === 'mariadb' ? ['SHOW SLAVE STATUS'] : ['SHOW REPLICA STATUS', 'SHOW SLAVE STATUS']) {
      try {
        await conn.query(sql);
        statusSql = sql;
        break;
      } catch (e) {
        this.log.debug({ node: name, sql, err: (e as Error).message }, 'replica status not readable');
      }
    }
    if (!statusSql) this.log.warn({ node: name }, 'the monitoring login cannot read replica status (grant SLAVE MONITOR on MariaDB 10.5+, REPLICATION CLIENT on MySQL); no Seconds_Behind_Master cross-check');
    let groupSelf: string | null = null;
    if (flavor === 'mysql') {
      // The variable exists only while the group_replication plugin is loaded; without it the node is
      // judged by read_only alone, as any MySQL replica.
      try {
        const [g] = await conn.query<mysql.RowDataPacket[]>('SELECT @@global.server_uuid AS uuid, @@global.group_replication_group_name AS gname');
        groupSelf = String(g[0]?.uuid ?? '') || null;
      } catch (e) {
        this.log.debug({ node: name, err: (e as Error).message }, 'no group replication plugin');
      }
    }
    return { conn, flavor, statusSql, groupSelf };
  }

  private dropClient(name: string): void {
    const p = this.clients.get(name);
    if (!p) return;
    this.clients.delete(name);
    // A connect still under way is closed when it finishes.
    p.then((m) => m.conn.destroy(), () => undefined);
  }
}
