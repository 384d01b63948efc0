import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { classify } from '../../src/sql/index.js';
import { allCases, type CaseRow } from '../unit/sql/cases.js';

/**
 * The database as oracle for the classifier: every row of the classification
 * table expected to be a read runs inside a READ ONLY transaction on the
 * primary, where the server itself rejects anything that writes (PostgreSQL
 * SQLSTATE 25006, MySQL/MariaDB errno 1792). Other errors (a cursor that does
 * not exist, syntax of another version) are listed but allowed. Conversely,
 * rows expected to be DML/DDL writes must be rejected there.
 */

const PG_FIXTURE = [
  'DROP SCHEMA IF EXISTS clf CASCADE',
  'CREATE SCHEMA clf',
  'SET search_path = clf, public',
  'CREATE TABLE t (id int PRIMARY KEY, a int, b text)',
  'CREATE TABLE u (id int, t_id int, v text)',
  'CREATE TABLE u2 ("update" int, "delete" int, "insert" int, "ünïcødé" int, "日本" int)',
  'CREATE TABLE "MixedCase" ("Id" int)',
  'CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))',
  'CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84))',
  'CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int, filler char(88))',
  'CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22))',
  'CREATE SEQUENCE s',
  'CREATE VIEW v AS SELECT * FROM t',
  'INSERT INTO t VALUES (1, 1, \'one\'), (2, 2, \'two\')',
  'INSERT INTO u VALUES (1, 1, \'x\')',
];

const MY_FIXTURE = [
  'DROP DATABASE IF EXISTS clf',
  'CREATE DATABASE clf',
  'USE clf',
  'CREATE TABLE t (id int PRIMARY KEY, a int, b text)',
  'CREATE TABLE u (id int, t_id int, v text)',
  'CREATE TABLE u2 (`update` int, `delete` int, `ünïcødé` int)',
  'CREATE TABLE sbtest1 (id int PRIMARY KEY AUTO_INCREMENT, k int, c char(120), pad char(60))',
  "INSERT INTO t VALUES (1, 1, 'one'), (2, 2, 'two')",
];

interface Outcome {
  sql: string;
  ok: boolean;
  readOnlyViolation: boolean;
  error?: string;
}

const runnable = (dialect: CaseRow[0]) => allCases.filter((r) => r[0] === dialect && r[4]?.oracle !== false);
/** PostgreSQL checks these in read-only transactions; MySQL DDL commits implicitly, so only its DML is checked. */
const PG_REJECTED_REASONS = new Set(['dml', 'ddl', 'locking_read', 'select_into', 'writable_cte', 'explain_analyze_write']);

function report(label: string, outcomes: Outcome[]): void {
  const failed = outcomes.filter((o) => !o.ok && !o.readOnlyViolation);
  console.log(`[classifier oracle] ${label}: ${outcomes.filter((o) => o.ok).length} ran, ${outcomes.filter((o) => o.readOnlyViolation).length} rejected as writes, ${failed.length} other errors`);
  if (failed.length > 0) console.log(`[classifier oracle] ${label}: ${failed.length} statements failed for other reasons:\n${failed.map((o) => `  ${o.sql}  -> ${o.error}`).join('\n')}`);
}

describe('classifier oracle: PostgreSQL', () => {
  const cluster = inject('pgCluster');
  const primary = cluster.nodes.find((n) => n.role === 'primary')!;
  let client: pg.Client;

  beforeAll(async () => {
    client = new pg.Client({ host: primary.host, port: primary.port, user: cluster.users.superuser.user, password: cluster.users.superuser.password, database: cluster.database });
    client.on('notice', () => undefined); // "there is already a transaction in progress"
    await client.connect();
    for (const sql of PG_FIXTURE) await client.query(sql);
  });

  afterAll(async () => {
    await client?.query('DROP SCHEMA IF EXISTS clf CASCADE').catch(() => undefined);
    await client?.end();
  });

  async function inReadOnly(sql: string): Promise<Outcome> {
    await client.query('BEGIN READ ONLY');
    try {
      await client.query(sql);
      return { sql, ok: true, readOnlyViolation: false };
    } catch (e) {
      const err = e as { code?: string; message: string };
      return { sql, ok: false, readOnlyViolation: err.code === '25006', error: `${err.code}: ${err.message}` };
    } finally {
      await client.query('ROLLBACK');
    }
  }

  it('runs every read row inside BEGIN READ ONLY without a read-only violation', async () => {
    const reads = runnable('postgres').filter((r) => r[2] === 'read');
    expect(reads.length).toBeGreaterThan(80);
    const outcomes: Outcome[] = [];
    for (const [dialect, sql] of reads) {
      expect(classify(sql, { dialect }).class).toBe('read');
      outcomes.push(await inReadOnly(sql));
    }
    report('postgres reads', outcomes);
    expect(outcomes.filter((o) => o.readOnlyViolation).map((o) => o.sql)).toEqual([]);
    // Keep the rows realistic: nearly all of them must actually run.
    expect(outcomes.filter((o) => o.ok).length).toBeGreaterThanOrEqual(Math.floor(reads.length * 0.9));
  });

  it('the server rejects the DML/DDL rows (and locking reads, SELECT INTO, writable CTEs) in a read-only transaction', async () => {
    const writes = runnable('postgres').filter((r) => r[2] === 'write' && PG_REJECTED_REASONS.has(r[3] ?? ''));
    expect(writes.length).toBeGreaterThan(40);
    const outcomes: Outcome[] = [];
    for (const [, sql] of writes) outcomes.push(await inReadOnly(sql));
    report('postgres writes', outcomes);
    expect(outcomes.filter((o) => !o.readOnlyViolation).map((o) => `${o.sql} -> ${o.ok ? 'ran' : o.error}`)).toEqual([]);
  });
});

describe('classifier oracle: MariaDB', () => {
  const cluster = inject('mariaCluster');
  const primary = cluster.nodes.find((n) => n.role === 'primary')!;
  let conn: mysql.Connection;

  beforeAll(async () => {
    conn = await mysql.createConnection({ host: primary.host, port: primary.port, user: cluster.users.superuser.user, password: cluster.users.superuser.password, database: cluster.database });
    for (const sql of MY_FIXTURE) await conn.query(sql);
  });

  afterAll(async () => {
    await conn?.query('DROP DATABASE IF EXISTS clf').catch(() => undefined);
    await conn?.end();
  });

  async function inReadOnly(sql: string): Promise<Outcome> {
    await conn.query('START TRANSACTION READ ONLY');
    try {
      await conn.query(sql);
      return { sql, ok: true, readOnlyViolation: false };
    } catch (e) {
      const err = e as { errno?: number; message: string };
      return { sql, ok: false, readOnlyViolation: err.errno === 1792, error: `${err.errno}: ${err.message}` };
    } finally {
      await conn.query('ROLLBACK');
    }
  }

  it('runs every read row inside START TRANSACTION READ ONLY without a read-only violation', async () => {
    const reads = runnable('mysql').filter((r) => r[2] === 'read');
    expect(reads.length).toBeGreaterThan(50);
    const outcomes: Outcome[] = [];
    for (const [dialect, sql] of reads) {
      expect(classify(sql, { dialect }).class).toBe('read');
      outcomes.push(await inReadOnly(sql));
    }
    report('mariadb reads', outcomes);
    expect(outcomes.filter((o) => o.readOnlyViolation).map((o) => o.sql)).toEqual([]);
    expect(outcomes.filter((o) => o.ok).length).toBeGreaterThanOrEqual(Math.floor(reads.length * 0.9));
  });

  it('the server rejects the DML rows in a read-only transaction', async () => {
    const writes = runnable('mysql').filter((r) => r[2] === 'write' && r[3] === 'dml');
    expect(writes.length).toBeGreaterThan(8);
    const outcomes: Outcome[] = [];
    for (const [, sql] of writes) outcomes.push(await inReadOnly(sql));
    report('mariadb writes', outcomes);
    expect(outcomes.filter((o) => !o.readOnlyViolation).map((o) => `${o.sql} -> ${o.ok ? 'ran' : o.error}`)).toEqual([]);
  });
});
