import { foldHash, wordEquals } from './tokenizer.js';

/**
 * The few keywords the statement scanner reacts to anywhere in a statement,
 * recognised without allocating: by the word's hash (Lexer.hash) in a small
 * open-addressing table, confirmed by one comparison. Every other word is
 * KW.NONE, and most words cost one table load to find that out.
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

const WORDS: [string, KeywordId][] = [
  ['insert', KW.INSERT], ['update', KW.UPDATE], ['delete', KW.DELETE], ['merge', KW.MERGE], ['into', KW.INTO],
  ['for', KW.FOR], ['no', KW.NO], ['key', KW.KEY], ['share', KW.SHARE], ['in', KW.IN], ['lock', KW.LOCK],
  ['next', KW.NEXT], ['previous', KW.PREVIOUS], ['value', KW.VALUE], ['from', KW.FROM], ['to', KW.TO],
  ['sql_calc_found_rows', KW.SQL_CALC_FOUND_ROWS], ['temp', KW.TEMP], ['temporary', KW.TEMP], ['begin', KW.BEGIN],
  ['end', KW.END], ['case', KW.CASE], ['if', KW.IF], ['loop', KW.LOOP], ['while', KW.WHILE], ['repeat', KW.REPEAT],
  ['stdout', KW.STDOUT], ['outfile', KW.OUTFILE], ['dumpfile', KW.DUMPFILE],
];

// 29 words in 128 slots (linear probing): a word that is no keyword usually
// meets an empty slot at once.
const MASK = 127;
const slotHash = new Int32Array(MASK + 1);
const slotId = new Uint8Array(MASK + 1); // KW.NONE: empty
const slotWord: string[] = new Array<string>(MASK + 1).fill('');
for (const [word, id] of WORDS) {
  const h = foldHash(word, 0, word.length);
  let i = h & MASK;
  while (slotId[i] !== KW.NONE) {
    if (slotHash[i] === h) throw new Error(`keyword hash collision: ${word}, ${slotWord[i]}`);
    i = (i + 1) & MASK;
  }
  slotHash[i] = h;
  slotId[i] = id;
  slotWord[i] = word;
}

/** The keyword of the WORD src[start, end) whose foldHash() is `h` (Lexer.hash). */
export function keywordOf(h: number, s: string, start: number, end: number): KeywordId {
  for (let i = h & MASK; ; i = (i + 1) & MASK) {
    const id = slotId[i] as KeywordId;
    if (id === KW.NONE) return KW.NONE;
    // Keyword hashes are distinct, so one with this hash is the only candidate.
    if (slotHash[i] === h) return wordEquals(s, start, end, slotWord[i]!) ? id : KW.NONE;
  }
}

/** The keyword of the word src[start, end). */
export function keywordId(s: string, start: number, end: number): KeywordId {
  return keywordOf(foldHash(s, start, end), s, start, end);
}
