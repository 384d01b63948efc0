import type { Dialect, Reason, StatementClass } from '../../../../src/sql/index.js';

/** Flags of a row: `oracle: false` keeps it out of the database oracle (placeholders, objects it cannot have). */
export interface CaseFlags {
  oracle?: false;
}

/** [dialect, sql, expected class, expected reason?, flags?] */
export type CaseRow = readonly [Dialect, string, StatementClass, Reason?, CaseFlags?];

export const P: Dialect = 'postgres';
export const M: Dialect = 'mysql';
export const NO_ORACLE: CaseFlags = { oracle: false };
