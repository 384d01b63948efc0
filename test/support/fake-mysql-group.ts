/**
 * A stand-in for a MySQL 8 Group Replication member, for what cannot exist on
 * these machines (Debian ships MariaDB only, and no Docker engine runs here).
 * It is mysql2's own server side answering exactly the statements the
 * topology monitor sends (src/topology/mysql-monitor.ts), from state the test
 * sets: read_only/super_read_only, gtid_executed, and each member's view of
 * performance_schema.replication_group_members. Any other statement gets an
 * error, so a monitor that starts sending something new fails the test
 * instead of reading made-up data.
 */
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';

const require = createRequire(import.meta.url);
// mysql2's server classes have no type declarations.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const mysql2: any = require('mysql2');

export interface MemberRow {
  id: string;
  host: string;
  port: number;
  state: string;
  role: string;
}

export interface FakeMemberState {
  uuid: string;
  groupName: string;
  readOnly: boolean;
  superReadOnly: boolean;
  gtidExecuted: string;
  /** What this member lists in replication_group_members (its own view: a partitioned one differs). */
  view: MemberRow[];
  /** Plugin not loaded: @@group_replication_group_name is an unknown variable. */
  noPlugin?: boolean;
}

const VAR_STRING = 253;
const LONGLONG = 8;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Conn = any;

export class FakeGroupMember {
  readonly statements: string[] = [];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private readonly server: any;
  private readonly conns = new Set<Conn>();
  port = 0;

  constructor(public state: FakeMemberState) {
    this.server = mysql2.createServer();
    this.server.on('connection', (conn: Conn) => this.accept(conn));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server._server.address() as AddressInfo).port;
    return this.port;
  }

  /** Breaks every open connection (the monitor opens a new one and learns the server again). */
  dropConnections(): void {
    for (const c of this.conns) c.stream.destroy();
  }

  /** Closes the listener and every connection (the node is gone). */
  async close(): Promise<void> {
    for (const c of this.conns) c.stream.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(conn: Conn): void {
    this.conns.add(conn);
    conn.stream.on('close', () => this.conns.delete(conn));
    conn.on('error', () => undefined);
    conn.serverHandshake({
      protocolVersion: 10,
      serverVersion: '8.0.36',
      connectionId: 1,
      statusFlags: 2,
      characterSet: 33,
      // PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | TRANSACTIONS | LONG_PASSWORD
      capabilityFlags: 0x200 | 0x8000 | 0x80000 | 0x2000 | 0x1,
      // Any login is let in (the monitor's password is not what is under test); after the OK the
      // first command comes with sequence id 0.
      authCallback: (_params: unknown, done: (err: null, mysqlError?: unknown) => void) => {
        done(null);
        conn.sequenceId = 0;
      },
    });
    conn.on('query', (sql: string) => {
      // mysql2's server side carries its sequence id on across commands: each answer starts at 1
      // (after the client's command, 0), and the next command is expected at 0 again.
      conn.sequenceId = 1;
      this.answer(conn, sql);
      conn.sequenceId = 0;
    });
  }

  private answer(conn: Conn, sql: string): void {
    this.statements.push(sql);
    const s = this.state;
    if (sql === 'SELECT @@version AS v') return this.rows(conn, [['v', VAR_STRING]], [['8.0.36']]);
    if (/^SHOW (REPLICA|SLAVE) STATUS$/.test(sql)) {
      // A group member lists the group's channels; the monitor must not read them as lag.
      return this.rows(conn, [['Replica_IO_Running', VAR_STRING], ['Seconds_Behind_Source', LONGLONG], ['Channel_Name', VAR_STRING]], [['Yes', '0', 'group_replication_applier']]);
    }
    if (sql.startsWith('SELECT @@global.server_uuid AS uuid, @@global.group_replication_group_name')) {
      if (s.noPlugin) return conn.writeError({ code: 1193, message: "Unknown system variable 'group_replication_group_name'" });
      return this.rows(conn, [['uuid', VAR_STRING], ['gname', VAR_STRING]], [[s.uuid, s.groupName]]);
    }
    if (sql.startsWith('SELECT @@global.read_only AS ro, @@global.super_read_only AS sro')) {
      return this.rows(conn, [['ro', LONGLONG], ['sro', LONGLONG], ['gexec', VAR_STRING], ['gmode', VAR_STRING]], [[s.readOnly ? '1' : '0', s.superReadOnly ? '1' : '0', s.gtidExecuted, 'ON']]);
    }
    if (sql.includes('FROM performance_schema.replication_group_members')) {
      if (s.noPlugin) return conn.writeError({ code: 1193, message: "Unknown system variable 'group_replication_group_name'" });
      const cols: [string, number][] = [['id', VAR_STRING], ['host', VAR_STRING], ['port', LONGLONG], ['state', VAR_STRING], ['role', VAR_STRING], ['gname', VAR_STRING]];
      return this.rows(conn, cols, s.view.map((m) => [m.id, m.host, String(m.port), m.state, m.role, s.groupName]));
    }
    conn.writeError({ code: 1064, message: `fake MySQL 8 member: unexpected statement: ${sql}` });
  }

  /** A text resultset (mysql2's writeTextResult misplaces row values, so rows are written here). */
  private rows(conn: Conn, cols: [string, number][], rows: (string | null)[][]): void {
    conn.writeColumns(
      cols.map(([name, columnType]) => ({ catalog: 'def', schema: '', table: '', orgTable: '', name, orgName: name, characterSet: 33, columnLength: 255, columnType, flags: 0, decimals: 0 })),
    );
    for (const r of rows) conn.writeTextRow(r);
    conn.writeEof();
  }
}
