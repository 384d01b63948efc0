import { readCases } from './cases/reads.js';
import { sessionCases } from './cases/session.js';
import { transactionCases } from './cases/transactions.js';
import { trapCases } from './cases/traps.js';
import { writeCases } from './cases/writes.js';
import type { CaseRow } from './cases/types.js';

export type { CaseRow, CaseFlags } from './cases/types.js';

/**
 * Every classification row, by theme. The unit tests check each; the database
 * oracle (test/integration/classifier-oracle.test.ts) runs the rows expected to
 * be reads inside read-only transactions.
 */
export const caseGroups: Record<string, CaseRow[]> = {
  reads: readCases,
  writes: writeCases,
  traps: trapCases,
  transactions: transactionCases,
  session: sessionCases,
};

export const allCases: CaseRow[] = Object.values(caseGroups).flat();
