/**
 * Classifier throughput on one core: `npx tsx bench/classifier.ts`.
 * A realistic mix (pgbench, sysbench oltp, ORM-style statements of 200-2,000
 * chars), cached (Classifier with its LRU) and uncached (cache disabled), and
 * the full PostgreSQL parser (libpg-query) on the same PostgreSQL statements.
 * Prints a table and writes bench/results/classifier.json.
 *
 * The development machine is shared (2 cores, other test runs): every row is
 * measured in ROUNDS short rounds, the rows taking turns, and the median round
 * is reported, so a burst of load hits the classifier and the parser alike
 * instead of whichever row happened to run at the time.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadModule, parseSync } from 'libpg-query';
import { Classifier, type Dialect } from '../src/sql/index.js';

// 1. The statements.
const pgbench = [
  'BEGIN;',
  'UPDATE pgbench_accounts SET abalance = abalance + -4231 WHERE aid = 83712;',
  'SELECT abalance FROM pgbench_accounts WHERE aid = 83712;',
  'UPDATE pgbench_tellers SET tbalance = tbalance + -4231 WHERE tid = 7;',
  'UPDATE pgbench_branches SET bbalance = bbalance + -4231 WHERE bid = 1;',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 83712, -4231, CURRENT_TIMESTAMP);',
  'END;',
];
const sysbench = [
  'SELECT c FROM sbtest1 WHERE id=5012',
  'SELECT c FROM sbtest1 WHERE id BETWEEN 4012 AND 4111',
  'SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN 4012 AND 4111',
  'SELECT c FROM sbtest1 WHERE id BETWEEN 4012 AND 4111 ORDER BY c',
  'SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 4012 AND 4111 ORDER BY c',
  'UPDATE sbtest1 SET k=k+1 WHERE id=5012',
  "UPDATE sbtest1 SET c='83868641912-28773972837-60736120486' WHERE id=4992",
  'DELETE FROM sbtest1 WHERE id=5001',
  "INSERT INTO sbtest1 (id, k, c, pad) VALUES (5001, 4991, '12-34', '56-78')",
];
function ormSelect(columns: number, joins: number, inList: number): string {
  const cols = Array.from({ length: columns }, (_, i) => `"user0_"."column_number_${i}" AS "col_${i}_0_"`).join(', ');
  const js = Array.from({ length: joins }, (_, i) => ` LEFT OUTER JOIN "orders" "order${i}_" ON "user0_"."id" = "order${i}_"."user_id"`).join('');
  const ins = Array.from({ length: inList }, (_, i) => `$${i + 1}`).join(', ');
  return `SELECT ${cols} FROM "users" "user0_"${js} WHERE "user0_"."id" IN (${ins}) AND "user0_"."deleted_at" IS NULL ORDER BY "user0_"."created_at" DESC LIMIT 50`;
}
const orm = [
  ormSelect(4, 0, 3),
  ormSelect(12, 1, 10),
  ormSelect(30, 3, 40),
  ormSelect(45, 4, 80),
  `INSERT INTO "events" ("id", "kind", "payload", "created_at") VALUES ($1, $2, $3, now()) ON CONFLICT ("id") DO UPDATE SET "payload" = EXCLUDED."payload" RETURNING "id", "kind", "payload", "created_at", "updated_at", "version"`,
  `WITH "recent" AS (SELECT "order_id", sum("amount") AS "total" FROM "payments" WHERE "created_at" > now() - interval '1 day' GROUP BY "order_id") SELECT o.*, r."total" FROM "orders" o JOIN "recent" r ON r."order_id" = o."id" WHERE o."status" = ANY($1) ORDER BY r."total" DESC LIMIT 100`,
];
const pgStatements = [...pgbench, ...orm, ...sysbench.map((s) => s.replace(/sbtest1/g, 'sbtest_pg'))];
const myStatements = sysbench;
const mix: { sql: string; dialect: Dialect }[] = [
  ...pgStatements.map((sql) => ({ sql, dialect: 'postgres' as const })),
  ...myStatements.map((sql) => ({ sql, dialect: 'mysql' as const })),
];

// 2. A timing loop: runs fn over the statements round-robin for ~durationMs.
const ROUNDS = 7;
const ROUND_MS = 300;
function measure(statements: readonly string[], fn: (sql: string) => unknown, durationMs: number): number {
  let n = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(durationMs) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let i = 0; i < 1000; i++) fn(statements[(n + i) % statements.length]!);
    n += 1000;
    elapsed = process.hrtime.bigint() - start;
  }
  return Math.round(n / (Number(elapsed) / 1e9));
}

async function main(): Promise<void> {
  await loadModule();
  const pgCached = new Classifier({ dialect: 'postgres' });
  const myCached = new Classifier({ dialect: 'mysql' });
  const pgUncached = new Classifier({ dialect: 'postgres', cacheSize: 0 });
  const myUncached = new Classifier({ dialect: 'mysql', cacheSize: 0 });
  const byDialect = (cached: boolean) => (s: { sql: string; dialect: Dialect }) =>
    (s.dialect === 'postgres' ? (cached ? pgCached : pgUncached) : cached ? myCached : myUncached).classify(s.sql);

  const short = mix.filter((s) => s.sql.length < 200);
  const long = mix.filter((s) => s.sql.length >= 200);
  const rows: { name: string; statements: number; avgChars: number; perSecond: number }[] = [];
  const avg = (xs: readonly string[]) => Math.round(xs.reduce((a, s) => a + s.length, 0) / xs.length);
  const planned: { name: string; items: { sql: string; dialect: Dialect }[]; run: (durationMs: number) => number }[] = [];
  const run = (name: string, items: { sql: string; dialect: Dialect }[], fn: (s: { sql: string; dialect: Dialect }) => unknown) => {
    const idx = items.map((_, i) => String(i));
    const each = (i: string) => fn(items[Number(i)]!);
    for (let i = 0; i < Math.max(2_000, 20 * items.length); i++) each(idx[i % idx.length]!); // warm up the JIT
    planned.push({ name, items, run: (ms) => measure(idx, each, ms) });
  };
  run('classifier cached, full mix', mix, byDialect(true));
  run('classifier uncached, full mix', mix, byDialect(false));
  run('classifier uncached, < 200 chars', short, byDialect(false));
  run('classifier uncached, >= 200 chars (ORM)', long, byDialect(false));
  const pgItems = pgStatements.map((sql) => ({ sql, dialect: 'postgres' as const }));
  const pgShort = pgItems.filter((s) => s.sql.length < 200);
  const pgLong = pgItems.filter((s) => s.sql.length >= 200);
  run('classifier cached, PostgreSQL statements', pgItems, byDialect(true));
  run('classifier uncached, PostgreSQL statements', pgItems, byDialect(false));
  run('libpg-query parseSync, PostgreSQL statements', pgItems, (s) => parseSync(s.sql));
  run('classifier uncached, PostgreSQL < 200 chars', pgShort, byDialect(false));
  run('libpg-query parseSync, PostgreSQL < 200 chars', pgShort, (s) => parseSync(s.sql));
  run('classifier uncached, PostgreSQL >= 200 chars', pgLong, byDialect(false));
  run('libpg-query parseSync, PostgreSQL >= 200 chars', pgLong, (s) => parseSync(s.sql));

  // Rounds: every row in turn, ROUNDS times; the median round of each row counts.
  const samples = planned.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) planned.forEach((p, i) => samples[i]!.push(p.run(ROUND_MS)));
  planned.forEach((p, i) => {
    const sorted = [...samples[i]!].sort((a, b) => a - b);
    rows.push({ name: p.name, statements: p.items.length, avgChars: avg(p.items.map((s) => s.sql)), perSecond: sorted[sorted.length >> 1]! });
  });

  // A speed-up is the median over rounds of (classifier / parser) within the same
  // round: the two rows run back to back, so they share the load of the moment.
  const ratio = (a: string, b: string) => {
    const ia = planned.findIndex((p) => p.name === a);
    const ib = planned.findIndex((p) => p.name === b);
    const rs = samples[ia]!.map((x, i) => x / samples[ib]![i]!).sort((x, y) => x - y);
    return rs[rs.length >> 1]!;
  };
  const speedup = {
    cached: ratio('classifier cached, PostgreSQL statements', 'libpg-query parseSync, PostgreSQL statements'),
    uncached: ratio('classifier uncached, PostgreSQL statements', 'libpg-query parseSync, PostgreSQL statements'),
    uncachedShort: ratio('classifier uncached, PostgreSQL < 200 chars', 'libpg-query parseSync, PostgreSQL < 200 chars'),
    uncachedLong: ratio('classifier uncached, PostgreSQL >= 200 chars', 'libpg-query parseSync, PostgreSQL >= 200 chars'),
  };
  for (const k of Object.keys(speedup) as (keyof typeof speedup)[]) speedup[k] = Number(speedup[k].toFixed(1));
  console.log(`node ${process.version}, one core, median of ${ROUNDS} rounds of ${ROUND_MS} ms per row\n`);
  console.log(`${'benchmark'.padEnd(48)} ${'stmts'.padStart(6)} ${'avg chars'.padStart(10)} ${'statements/s'.padStart(14)}`);
  for (const r of rows) console.log(`${r.name.padEnd(48)} ${String(r.statements).padStart(6)} ${String(r.avgChars).padStart(10)} ${r.perSecond.toLocaleString('en-US').padStart(14)}`);
  console.log(`\nspeed-up vs libpg-query on the same statements: cached ${speedup.cached}x, uncached ${speedup.uncached}x (< 200 chars: ${speedup.uncachedShort}x, >= 200 chars: ${speedup.uncachedLong}x)`);

  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'classifier.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ node: process.version, date: new Date().toISOString(), method: `rates: median of ${ROUNDS} interleaved rounds of ${ROUND_MS} ms; speed-ups: median of the per-round ratios`, rows, speedupVsLibpgQuery: speedup }, null, 2)}\n`);
  console.log('wrote bench/results/classifier.json');
}

await main();
