/*
 * SASLprep (RFC 4013) of a SCRAM password, as PostgreSQL does it
 * (src/common/saslprep.c, shared by libpq and the server). Both ends must
 * prepare a password identically or SCRAM fails, so this follows PostgreSQL's
 * procedure, including its fallback: when preparation fails the password is
 * used unchanged.
 *
 * Exact for ASCII passwords (returned untouched, as PostgreSQL does). For
 * non-ASCII passwords it is an approximation: the mapping and prohibited
 * tables below are RFC 3454's; NFKC uses the runtime's current Unicode
 * version (PostgreSQL ships its own tables); "unassigned code point" means
 * unassigned today rather than in Unicode 3.2; and the bidirectional check
 * (RFC 3454 section 6) is not done, so a password mixing right-to-left and
 * left-to-right letters is normalized where PostgreSQL would keep it raw.
 */

type Range = readonly [number, number];

/** RFC 3454 C.1.2, mapped to U+0020. */
const NON_ASCII_SPACE: Range[] = [
  [0x00a0, 0x00a0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];

/** RFC 3454 B.1, removed. */
const MAPPED_TO_NOTHING: Range[] = [
  [0x00ad, 0x00ad],
  [0x034f, 0x034f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];

/** RFC 4013 section 2.3: RFC 3454 C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9. */
const PROHIBITED: Range[] = [
  ...NON_ASCII_SPACE,
  [0x0000, 0x001f], // C.2.1
  [0x007f, 0x009f], // C.2.1 DEL, C.2.2
  [0x0340, 0x0341], // C.8
  [0x06dd, 0x06dd],
  [0x070f, 0x070f],
  [0x180e, 0x180e],
  [0x200c, 0x200f], // C.2.2, C.8
  [0x2028, 0x202e], // C.2.2, C.8
  [0x2060, 0x2063],
  [0x206a, 0x206f],
  [0x2ff0, 0x2ffb], // C.7
  [0xd800, 0xdfff], // C.5 (a lone surrogate in a JS string)
  [0xe000, 0xf8ff], // C.3
  [0xfdd0, 0xfdef], // C.4
  [0xfeff, 0xfeff],
  [0xfff9, 0xffff], // C.2.2, C.6, C.4
  [0x1d173, 0x1d17a],
  [0xe0001, 0xe0001], // C.9
  [0xe0020, 0xe007f],
  [0xf0000, 0xffffd], // C.3
  [0x100000, 0x10fffd],
];

const UNASSIGNED = /\p{Cn}/u;

function inRanges(code: number, ranges: Range[]): boolean {
  for (const [lo, hi] of ranges) if (code >= lo && code <= hi) return true;
  return false;
}

/** C.4: the last two code points of every plane are noncharacters. */
function isNoncharacter(code: number): boolean {
  return (code & 0xfffe) === 0xfffe;
}

const ASCII_ONLY = /^[\x00-\x7f]*$/;

export function saslprep(password: string): string {
  // 1. ASCII needs no preparation.
  if (ASCII_ONLY.test(password)) return password;
  // 2. Map: non-ASCII spaces to a space, B.1 characters to nothing.
  let mapped = '';
  for (const ch of password) {
    const code = ch.codePointAt(0)!;
    if (inRanges(code, NON_ASCII_SPACE)) mapped += ' ';
    else if (!inRanges(code, MAPPED_TO_NOTHING)) mapped += ch;
  }
  // An empty result counts as prohibited, and prohibited means "use the raw password".
  if (mapped === '') return password;
  // 3. Prohibit: PostgreSQL checks the mapped characters (before normalization).
  for (const ch of mapped) {
    const code = ch.codePointAt(0)!;
    if (inRanges(code, PROHIBITED) || isNoncharacter(code) || UNASSIGNED.test(ch)) return password;
  }
  // 4. Normalize with NFKC.
  return mapped.normalize('NFKC');
}
