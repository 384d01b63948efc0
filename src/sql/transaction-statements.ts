import type { Reader, StatementResult } from './reader.js';
import { rest } from './statement.js';
import { Tok } from './tokenizer.js';
import type { TransactionInfo } from './types.js';

export const TRANSACTION_KEYWORDS = ['begin', 'start', 'commit', 'end', 'rollback', 'abort', 'savepoint', 'release', 'xa'];

/**
 * Transaction control. Everything is class write (the session layer decides
 * where it goes) except a BEGIN / START TRANSACTION that says READ ONLY, which
 * may open its transaction on a replica. Returns null when `first` is not
 * transaction control.
 */
export function readTransactionStatement(r: Reader, first: string): StatementResult | null {
  switch (first) {
    case 'begin': {
      r.step();
      // MariaDB `BEGIN NOT ATOMIC ... END` is a compound statement, not a transaction.
      if (r.ctx.dialect === 'mysql' && r.is('not')) {
        r.blocky = true;
        return rest(r, 'write', 'utility');
      }
      if (!r.accept('work')) r.accept('transaction');
      return begin(r, { op: 'begin' });
    }
    case 'start':
      r.step();
      if (!r.accept('transaction')) return rest(r, 'write', 'utility'); // START SLAVE, START REPLICA, ...
      return begin(r, { op: 'begin' });
    case 'commit':
    case 'end':
      r.step();
      if (r.accept('prepared')) return done(r, { op: 'commit_prepared' });
      return done(r, chain(r, { op: 'commit' }));
    case 'rollback':
    case 'abort':
      r.step();
      if (r.accept('prepared')) return done(r, { op: 'rollback_prepared' });
      if (!r.accept('work')) r.accept('transaction');
      if (r.is('to')) return done(r, { op: 'rollback_to' });
      return done(r, chain(r, { op: 'rollback' }));
    case 'savepoint':
      return done(r, { op: 'savepoint' });
    case 'release':
      return done(r, { op: 'release' });
    case 'xa':
      return done(r, { op: 'xa' });
  }
  return null;
}

export function done(r: Reader, info: TransactionInfo): StatementResult {
  const res = rest(r, 'write', 'transaction');
  res.transaction = info;
  return res;
}

/** BEGIN / START TRANSACTION modes; READ ONLY makes it a read. */
function begin(r: Reader, info: TransactionInfo): StatementResult {
  readModes(r, info);
  const res = done(r, info);
  if (info.readOnly === true && res.reason === 'transaction') res.class = 'read';
  return res;
}

/** Transaction modes (BEGIN, START TRANSACTION, SET TRANSACTION), comma-separated or not. */
export function readModes(r: Reader, info: TransactionInfo): void {
  while (!r.atEnd()) {
    if (r.accept('isolation')) {
      r.accept('level');
      const words: string[] = [];
      // SERIALIZABLE | REPEATABLE READ | READ COMMITTED | READ UNCOMMITTED
      for (let i = 0; i < 2 && r.lx.kind === Tok.WORD; i++) {
        const w = r.word();
        words.push(w);
        r.step();
        if (w === 'serializable' || w === 'snapshot') break;
      }
      info.isolation = words.join(' ');
    } else if (r.accept('read')) {
      if (r.accept('only')) info.readOnly = true;
      else if (r.accept('write')) info.readOnly = false;
    } else if (r.accept('with')) {
      if (r.accept('consistent')) {
        r.accept('snapshot');
        info.consistentSnapshot = true;
      }
    } else r.step(); // [NOT] DEFERRABLE, commas, anything else
  }
}

/** AND [NO] CHAIN after COMMIT / ROLLBACK. */
function chain(r: Reader, info: TransactionInfo): TransactionInfo {
  if (!r.accept('work')) r.accept('transaction');
  if (r.accept('and')) {
    const no = r.accept('no');
    if (r.accept('chain')) info.chain = !no;
  }
  return info;
}
