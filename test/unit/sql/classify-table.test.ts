import { describe, expect, it } from 'vitest';
import { classify } from '../../../src/sql/index.js';
import { allCases, caseGroups } from './cases.js';

describe('classification table', () => {
  it('has at least 300 rows', () => {
    expect(allCases.length).toBeGreaterThanOrEqual(300);
  });

  for (const [group, rows] of Object.entries(caseGroups)) {
    describe(group, () => {
      it.each(rows.map((r) => [r[0], r[1], r[2], r[3]] as const))('%s: %j -> %s %s', (dialect, sql, cls, reason) => {
        const c = classify(sql, { dialect });
        expect(c.class).toBe(cls);
        if (reason !== undefined) expect(c.reason).toBe(reason);
      });
    });
  }
});
