import { describe, expect, it } from 'vitest';
import { Cap, MysqlPacketReader, PayloadReader } from '../../../src/protocol/mysql/index.js';
import { answerFromAftermath, columnDefinition, bigintColumn, framed, singleTextRow, textResultSet } from '../../../src/frontend/mysql/answers.js';

const A = { lastInsertId: '42', rowCount: '3' };

function lenencStrings(buf: Buffer, n: number): string[] {
  const r = new PayloadReader(buf);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(r.lenencBytes().toString('utf8'));
  return out;
}

describe('proxy-made MySQL result sets', () => {
  it('column definition 41: def, names, 0x0c, charset, length, type, flags, decimals, filler', () => {
    const d = columnDefinition(bigintColumn('LAST_INSERT_ID()', true));
    expect(lenencStrings(d, 6)).toEqual(['def', '', '', '', 'LAST_INSERT_ID()', '']);
    const fixed = d.subarray(d.length - 13);
    expect(fixed[0]).toBe(0x0c);
    expect(fixed.readUInt16LE(1)).toBe(63);
    expect(fixed.readUInt32LE(3)).toBe(21);
    expect(fixed[7]).toBe(0x08);
    expect(fixed.readUInt16LE(8) & 0x20).toBe(0x20);
    expect(fixed.readUInt16LE(11)).toBe(0);
  });

  it('classic EOF layout: count, def, EOF, row, EOF; DEPRECATE_EOF: count, def, row, OK 0xfe', () => {
    const classic = textResultSet([bigintColumn('x', false)], [['7']], 2, 0);
    expect(classic.length).toBe(5);
    expect(classic[0]).toEqual(Buffer.from([1]));
    expect(classic[2]).toEqual(Buffer.from([0xfe, 0, 0, 2, 0]));
    expect(classic[3]).toEqual(Buffer.from([1, 0x37]));
    expect(classic[4]).toEqual(Buffer.from([0xfe, 0, 0, 2, 0]));
    const dep = textResultSet([bigintColumn('x', false)], [['7']], 2, Cap.DEPRECATE_EOF);
    expect(dep.length).toBe(4);
    expect(dep[3]![0]).toBe(0xfe);
    expect(dep[3]!.length).toBe(7);
    expect(singleTextRow(dep)).toEqual(['7']);
    expect(singleTextRow(classic)).toEqual(['7']);
  });

  it('frames packets with consecutive sequence ids', () => {
    const payloads = textResultSet([bigintColumn('x', false)], [['7']], 2, 0);
    const reader = new MysqlPacketReader({ maxMessageSize: 1 << 20 });
    const packets = reader.push(framed(payloads, 1));
    expect(packets.map((p) => p.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(packets.map((p) => Buffer.from(p.payload))).toEqual(payloads);
  });

  it('answers exactly the dependent reads, with the column named as written or aliased', () => {
    const name = (sql: string) => {
      const a = answerFromAftermath(sql, A, 2, 0);
      return a ? [lenencStrings(a[1]!, 5)[4], singleTextRow(a)![0]] : null;
    };
    expect(name('SELECT LAST_INSERT_ID()')).toEqual(['LAST_INSERT_ID()', '42']);
    expect(name('select last_insert_id( ) ;')).toEqual(['last_insert_id( )', '42']);
    expect(name('SELECT LAST_INSERT_ID() AS id')).toEqual(['id', '42']);
    expect(name('SELECT LAST_INSERT_ID() id;')).toEqual(['id', '42']);
    expect(name('SELECT ROW_COUNT() AS `n``x`')).toEqual(['n`x', '3']);
    expect(name("SELECT ROW_COUNT() 'rc'")).toEqual(['rc', '3']);
    for (const no of ['SELECT LAST_INSERT_ID() + 1', 'SELECT LAST_INSERT_ID() FROM dual', 'SELECT LAST_INSERT_ID(), 1', 'SELECT LAST_INSERT_ID(5)', '/* x */ SELECT LAST_INSERT_ID()', 'SELECT LAST_INSERT_ID(); SELECT 1']) {
      expect(answerFromAftermath(no, A, 2, 0), no).toBeNull();
    }
    expect(answerFromAftermath('SELECT ROW_COUNT()', { lastInsertId: '1', rowCount: null }, 2, 0)).toBeNull();
    const w = answerFromAftermath('show warnings;', A, 2, Cap.DEPRECATE_EOF)!;
    expect(w.length).toBe(5); // count, 3 definitions, end: no rows
    expect(w[0]).toEqual(Buffer.from([3]));
  });
});
