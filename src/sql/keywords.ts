import { wordEquals } from './tokenizer.js';

/**
 * The few keywords the statement scanner reacts to anywhere in a statement,
 * recognised without allocating (switch on length, then compare). Every
 * other word is KW.NONE.
 */
export const KW = {
  NONE: 0,
  INSERT: 1,
  UPDATE: 2,
  DELETE: 3,
  MERGE: 4,
  INTO: 5,
  FOR: 6,
  NO: 7,
  KEY: 8,
  SHARE: 9,
  IN: 10,
  LOCK: 11,
  NEXT: 12,
  PREVIOUS: 13,
  VALUE: 14,
  FROM: 15,
  TO: 16,
  SQL_CALC_FOUND_ROWS: 17,
  TEMP: 18,
  BEGIN: 19,
  END: 20,
  CASE: 21,
  IF: 22,
  LOOP: 23,
  WHILE: 24,
  REPEAT: 25,
  STDOUT: 26,
  OUTFILE: 27,
  DUMPFILE: 28,
} as const;
export type KeywordId = (typeof KW)[keyof typeof KW];

/** Key of a word for the switch below: its length and its lower-cased first character. */
function key(len: number, first: string): number {
  return (len << 8) | first.charCodeAt(0);
}

const K_IN = key(2, 'i'), K_NO = key(2, 'n'), K_TO = key(2, 't');
const K_FOR = key(3, 'f'), K_KEY = key(3, 'k'), K_END = key(3, 'e');
const K_FROM = key(4, 'f'), K_INTO = key(4, 'i'), K_LOCK = key(4, 'l'), K_NEXT = key(4, 'n'), K_TEMP = key(4, 't'), K_CASE = key(4, 'c');
const K_MERGE = key(5, 'm'), K_SHARE = key(5, 's'), K_VALUE = key(5, 'v'), K_BEGIN = key(5, 'b'), K_WHILE = key(5, 'w');
const K_INSERT = key(6, 'i'), K_UPDATE = key(6, 'u'), K_DELETE = key(6, 'd'), K_REPEAT = key(6, 'r'), K_STDOUT = key(6, 's');
const K_OUTFILE = key(7, 'o'), K_PREVIOUS = key(8, 'p'), K_DUMPFILE = key(8, 'd'), K_TEMPORARY = key(9, 't'), K_CALC = key(19, 's');

export function keywordId(s: string, start: number, end: number): KeywordId {
  const len = end - start;
  if (len > 19) return KW.NONE;
  // One switch on (length, first letter) leaves at most two candidates to compare.
  switch ((len << 8) | (s.charCodeAt(start) | 0x20)) {
    case K_IN: // also K_IF
      if (wordEquals(s, start, end, 'in')) return KW.IN;
      return wordEquals(s, start, end, 'if') ? KW.IF : KW.NONE;
    case K_NO: return wordEquals(s, start, end, 'no') ? KW.NO : KW.NONE;
    case K_TO: return wordEquals(s, start, end, 'to') ? KW.TO : KW.NONE;
    case K_FOR: return wordEquals(s, start, end, 'for') ? KW.FOR : KW.NONE;
    case K_KEY: return wordEquals(s, start, end, 'key') ? KW.KEY : KW.NONE;
    case K_END: return wordEquals(s, start, end, 'end') ? KW.END : KW.NONE;
    case K_FROM: return wordEquals(s, start, end, 'from') ? KW.FROM : KW.NONE;
    case K_INTO: return wordEquals(s, start, end, 'into') ? KW.INTO : KW.NONE;
    case K_LOCK: // also K_LOOP
      if (wordEquals(s, start, end, 'lock')) return KW.LOCK;
      return wordEquals(s, start, end, 'loop') ? KW.LOOP : KW.NONE;
    case K_NEXT: return wordEquals(s, start, end, 'next') ? KW.NEXT : KW.NONE;
    case K_TEMP: return wordEquals(s, start, end, 'temp') ? KW.TEMP : KW.NONE;
    case K_CASE: return wordEquals(s, start, end, 'case') ? KW.CASE : KW.NONE;
    case K_MERGE: return wordEquals(s, start, end, 'merge') ? KW.MERGE : KW.NONE;
    case K_SHARE: return wordEquals(s, start, end, 'share') ? KW.SHARE : KW.NONE;
    case K_VALUE: return wordEquals(s, start, end, 'value') ? KW.VALUE : KW.NONE;
    case K_BEGIN: return wordEquals(s, start, end, 'begin') ? KW.BEGIN : KW.NONE;
    case K_WHILE: return wordEquals(s, start, end, 'while') ? KW.WHILE : KW.NONE;
    case K_INSERT: return wordEquals(s, start, end, 'insert') ? KW.INSERT : KW.NONE;
    case K_UPDATE: return wordEquals(s, start, end, 'update') ? KW.UPDATE : KW.NONE;
    case K_DELETE: return wordEquals(s, start, end, 'delete') ? KW.DELETE : KW.NONE;
    case K_REPEAT: return wordEquals(s, start, end, 'repeat') ? KW.REPEAT : KW.NONE;
    case K_STDOUT: return wordEquals(s, start, end, 'stdout') ? KW.STDOUT : KW.NONE;
    case K_OUTFILE: return wordEquals(s, start, end, 'outfile') ? KW.OUTFILE : KW.NONE;
    case K_PREVIOUS: return wordEquals(s, start, end, 'previous') ? KW.PREVIOUS : KW.NONE;
    case K_DUMPFILE: return wordEquals(s, start, end, 'dumpfile') ? KW.DUMPFILE : KW.NONE;
    case K_TEMPORARY: return wordEquals(s, start, end, 'temporary') ? KW.TEMP : KW.NONE;
    case K_CALC: return wordEquals(s, start, end, 'sql_calc_found_rows') ? KW.SQL_CALC_FOUND_ROWS : KW.NONE;
    default: return KW.NONE;
  }
}
