import { describe, expect, it } from 'vitest';
import { GR_PORT, MEMBER_NAMES, accountsSql, demuxDockerLog, memberOptions, memberPrepareSql, primaryOf, type GroupMemberView } from '../../support/mysql8-group.js';

/*
 * The pure parts of the MySQL 8 Group Replication test group (test/support/mysql8-group.ts).
 * The group itself needs a Docker engine, which these machines lack; these checks are what
 * runs here of it: the server options and SQL it would send, and how it reads a member's view.
 */

const GROUP = '2f1e3c4d-0000-4000-8000-000000000001';

describe('memberOptions', () => {
  const opts = memberOptions('gr2', 2, MEMBER_NAMES, GROUP);

  it('gives each member its server_id, GTIDs on, the plugin, and reports its network alias as its host', () => {
    expect(opts).toEqual(expect.arrayContaining(['--server-id=2', '--report-host=gr2', '--gtid-mode=ON', '--enforce-gtid-consistency=ON', '--binlog-checksum=NONE', '--plugin-load-add=group_replication.so']));
  });

  it('names the group, its own XCom address and every seed on the aliases; nothing starts on boot; single-primary', () => {
    expect(opts).toEqual(
      expect.arrayContaining([
        `--loose-group-replication-group-name=${GROUP}`,
        `--loose-group-replication-local-address=gr2:${GR_PORT}`,
        `--loose-group-replication-group-seeds=gr1:${GR_PORT},gr2:${GR_PORT},gr3:${GR_PORT}`,
        '--loose-group-replication-start-on-boot=OFF',
        '--loose-group-replication-bootstrap-group=OFF',
        '--loose-group-replication-single-primary-mode=ON',
        '--loose-group-replication-recovery-get-public-key=ON',
      ]),
    );
  });

  it('prefixes every group_replication option with loose- (the entrypoint runs mysqld before they mean anything)', () => {
    const gr = opts.filter((o) => /group[-_]replication/.test(o) && !o.startsWith('--plugin-load-add='));
    expect(gr.length).toBeGreaterThan(5);
    for (const o of gr) expect(o.startsWith('--loose-group-replication-')).toBe(true);
  });
});

describe('memberPrepareSql', () => {
  const sql = memberPrepareSql({ user: 'gr_repl', password: 'pw' });

  it('creates the recovery account outside the binary log, then stores the recovery channel credentials', () => {
    const off = sql.indexOf('SET SQL_LOG_BIN = 0');
    const on = sql.indexOf('SET SQL_LOG_BIN = 1');
    const create = sql.findIndex((s) => s.startsWith("CREATE USER 'gr_repl'@'%'"));
    const grant = sql.findIndex((s) => s.startsWith('GRANT REPLICATION SLAVE'));
    const channel = sql.findIndex((s) => s.includes("FOR CHANNEL 'group_replication_recovery'"));
    expect(off).toBe(0);
    expect(create).toBeGreaterThan(off);
    expect(grant).toBeGreaterThan(create);
    expect(on).toBeGreaterThan(grant);
    expect(channel).toBeGreaterThan(on);
    expect(sql[channel]).toContain("SOURCE_USER = 'gr_repl', SOURCE_PASSWORD = 'pw'");
  });
});

describe('accountsSql', () => {
  it('creates both proxy accounts with caching_sha2_password; the monitor may read performance_schema and replica status', () => {
    const sql = accountsSql({ database: 'app', users: { root: { user: 'root', password: 'r' }, app: { user: 'app', password: 'a' }, monitor: { user: 'mon', password: 'm' }, repl: { user: 'x', password: 'y' } } });
    expect(sql).toContain("CREATE USER 'app'@'%' IDENTIFIED WITH caching_sha2_password BY 'a'");
    expect(sql).toContain("CREATE USER 'mon'@'%' IDENTIFIED WITH caching_sha2_password BY 'm'");
    expect(sql).toContain("GRANT SELECT ON performance_schema.* TO 'mon'@'%'");
    expect(sql).toContain("GRANT REPLICATION CLIENT ON *.* TO 'mon'@'%'");
    expect(sql.some((s) => s.includes("'x'"))).toBe(false); // the recovery account is per member, never replicated
  });
});

describe('primaryOf', () => {
  const row = (host: string, state: string, role: string): GroupMemberView => ({ MEMBER_ID: `id-${host}`, MEMBER_HOST: host, MEMBER_PORT: 3306, MEMBER_STATE: state, MEMBER_ROLE: role });
  const names = ['gr1', 'gr2', 'gr3'];

  it.each([
    ['the ONLINE PRIMARY', [row('gr1', 'ONLINE', 'SECONDARY'), row('gr2', 'ONLINE', 'PRIMARY'), row('gr3', 'ONLINE', 'SECONDARY')], 'gr2'],
    ['case does not matter', [row('gr3', 'online', 'primary')], 'gr3'],
    ['a PRIMARY not ONLINE is none', [row('gr1', 'UNREACHABLE', 'PRIMARY'), row('gr2', 'ONLINE', 'SECONDARY')], null],
    ['a stopped member lists only itself, OFFLINE with no role', [row('gr2', 'OFFLINE', '')], null],
    ['a host that is no member name is none', [row('10.0.0.7', 'ONLINE', 'PRIMARY')], null],
  ] as const)('%s', (_what, rows, expected) => {
    expect(primaryOf(rows, names)).toBe(expected);
  });
});

describe('demuxDockerLog', () => {
  const frame = (stream: number, text: string) => {
    const body = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(body.length, 4);
    return Buffer.concat([head, body]);
  };

  it('joins stdout and stderr frames without their headers', () => {
    expect(demuxDockerLog(Buffer.concat([frame(1, 'ready for connections\n'), frame(2, '[ERROR] x\n')]))).toBe('ready for connections\n[ERROR] x\n');
  });

  it('keeps an unframed (TTY) log as it is', () => {
    expect(demuxDockerLog(Buffer.from('plain text\n'))).toBe('plain text\n');
  });
});
