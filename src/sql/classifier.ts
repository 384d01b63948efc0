import { leadingHints } from './leading-hints.js';
import { readAll, type ClassifyContext, type StatementResult, type TextReading } from './reader.js';
import { WriteFunctionSet } from './write-functions.js';
import { literalShape, shapeCacheable } from './shape.js';
import type { Classification, ClassifierOptions, Explanation, SessionEffect, StatementDetail, TransactionInfo } from './types.js';

/** Contexts of option objects passed to classify()/explain(), so a reused options object builds its lists once. */
const contexts = new WeakMap<ClassifierOptions, { ctx: ClassifyContext; of: Pick<ClassifierOptions, 'dialect' | 'writeFunctions' | 'readFunctions'> }>();

function contextOf(opts: ClassifierOptions): ClassifyContext {
  const known = contexts.get(opts);
  // Reuse only while the options still hold the same dialect and the same list objects.
  if (known && known.of.dialect === opts.dialect && known.of.writeFunctions === opts.writeFunctions && known.of.readFunctions === opts.readFunctions) {
    return known.ctx;
  }
  const ctx: ClassifyContext = { dialect: opts.dialect, functions: new WriteFunctionSet(opts.dialect, opts.writeFunctions, opts.readFunctions) };
  contexts.set(opts, { ctx, of: { dialect: opts.dialect, writeFunctions: opts.writeFunctions, readFunctions: opts.readFunctions } });
  return ctx;
}

/**
 * Combines the statements of one text: a write if any statement is one (reason
 * multi_statement when the write is not the first statement); the first
 * transaction control found; every session effect in order. An unbalanced quote
 * or comment makes the whole text an unknown write.
 */
function combine(sql: string, ctx: ClassifyContext, reading: TextReading): Classification {
  const { results, broken } = reading;
  const hints = sql.length > 0 && needsHintScan(sql) ? leadingHints(sql, ctx.dialect) : {};
  const statements = results.length;
  if (broken) return { class: 'write', reason: 'unknown', statements, hints };
  if (statements === 0) return { class: 'read', reason: 'empty', statements, hints };
  const first = results[0]!;
  let out: Classification = { class: first.class, reason: first.reason, statements, hints };
  let transaction: TransactionInfo | undefined = first.transaction;
  let session: SessionEffect[] | undefined = first.session;
  for (let i = 1; i < statements; i++) {
    const r = results[i]!;
    if (r.class === 'write' && out.class === 'read') out = { class: 'write', reason: 'multi_statement', statements, hints };
    transaction ??= r.transaction;
    if (r.session) session = session ? [...session, ...r.session] : r.session;
  }
  if (transaction) out.transaction = transaction;
  if (session) out.session = session;
  return out;
}

/** Only a text that starts (after whitespace) with a comment can carry hints. */
function needsHintScan(sql: string): boolean {
  let p = 0;
  while (p < sql.length && sql.charCodeAt(p) <= 32) p++;
  const c = sql.charCodeAt(p);
  return c === 47 /* / */ || c === 45 /* - */ || c === 35 /* # */;
}

/** Classifies one text (one or more statements) without caching. */
export function classify(sql: string, opts: ClassifierOptions): Classification {
  const ctx = contextOf(opts);
  return combine(sql, ctx, readAll(sql, ctx));
}

/** classify() plus the class and reason of each statement (for `switchyard classify --json`). */
export function explain(sql: string, opts: ClassifierOptions): Explanation {
  const ctx = contextOf(opts);
  const reading = readAll(sql, ctx, true);
  const details: StatementDetail[] = reading.results.map((r: StatementResult, i) => {
    const d: StatementDetail = { text: sql.slice(reading.spans[2 * i] ?? 0, reading.spans[2 * i + 1] ?? 0), class: r.class, reason: r.reason };
    if (r.transaction) d.transaction = r.transaction;
    if (r.session) d.session = r.session;
    return d;
  });
  return { ...combine(sql, ctx, reading), details };
}

/**
 * A classifier with an LRU cache keyed by the exact text: repeated statements
 * (ORMs, prepared statements, pools) are classified once. Cached results are
 * deep-frozen and shared between callers. Texts longer than
 * MAX_CACHED_LENGTH are classified but not cached.
 */
export class Classifier {
  static readonly MAX_CACHED_LENGTH = 16_384;
  /** Longest text whose literal shape is computed (a bulk INSERT of literals is classified as it is). */
  static readonly MAX_SHAPED_LENGTH = 2_048;
  private readonly ctx: ClassifyContext;
  private readonly cache = new Map<string, Classification>();
  /** Results by literal shape (src/sql/shape.ts): texts that differ only in their values. */
  private readonly shapes = new Map<string, Classification>();
  private readonly capacity: number;

  constructor(opts: ClassifierOptions) {
    this.ctx = contextOf(opts);
    this.capacity = Math.max(0, Math.floor(opts.cacheSize ?? 10_000));
  }

  classify(sql: string): Classification {
    // Without a cache nothing is shared, so nothing needs freezing.
    if (this.capacity === 0) return combine(sql, this.ctx, readAll(sql, this.ctx));
    // 1. By shape first: a text with inlined values is seldom seen twice, its shape (values
    //    replaced) often is — `pgbench -S -M simple` sends a new text per transaction and one
    //    shape. Looking the new text up by itself first cost a hash of it per statement
    //    (about 1,400 instructions of pgbench's text) for a lookup that always missed.
    const shape = literalShape(sql, this.ctx.dialect, Classifier.MAX_SHAPED_LENGTH);
    if (shape !== null) {
      const known = this.shapes.get(shape);
      if (known !== undefined) return known;
    }
    // 2. By exact text: statements without literals, and those whose class a value decides.
    const cache = this.cache;
    const hit = cache.get(sql);
    if (hit !== undefined) {
      // A Map iterates in insertion order: re-inserting marks the entry most recently used.
      cache.delete(sql);
      cache.set(sql, hit);
      return hit;
    }
    const result = deepFreeze(combine(sql, this.ctx, readAll(sql, this.ctx)));
    if (shape !== null && shapeCacheable(result)) {
      // Kept by shape only: the exact-text cache would fill with texts seen once.
      if (this.shapes.size >= this.capacity) this.shapes.delete(this.shapes.keys().next().value as string);
      this.shapes.set(shape, result);
      return result;
    }
    if (sql.length <= Classifier.MAX_CACHED_LENGTH) {
      if (cache.size >= this.capacity) cache.delete(cache.keys().next().value as string);
      cache.set(sql, result);
    }
    return result;
  }

  /** Entries in the cache (by exact text and by literal shape). */
  get size(): number {
    return this.cache.size + this.shapes.size;
  }

  clear(): void {
    this.cache.clear();
    this.shapes.clear();
  }
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
