import { Cap, PayloadReader, buildEof, buildEndOfRows, framePacket, lenencBytes, lenencInt } from '../../protocol/mysql/index.js';

/*
 * Result sets the proxy makes itself (text protocol): the answers to
 * `SELECT LAST_INSERT_ID()`, `SELECT ROW_COUNT()`, `SHOW WARNINGS` /
 * `SHOW ERRORS` after the session's lingering connection went back to its pool
 * (see MysqlSession.reclaim), and the parsing of the one-row answer the
 * session reads before it gives such a connection back.
 */

export const FieldType = { LONG: 0x03, LONGLONG: 0x08, VAR_STRING: 0xfd } as const;
export const FieldFlag = { NOT_NULL: 0x1, BINARY: 0x80, UNSIGNED: 0x20, NUM: 0x8000 } as const;
/** Character set ids of column definitions: binary (numbers), utf8mb4_general_ci (text). */
const BINARY = 63;
const UTF8MB4 = 45;

export interface ColumnSpec {
  name: string;
  type: number;
  /** Display length (characters x maximum bytes per character for text). */
  length: number;
  flags: number;
  charset: number;
  decimals: number;
}

/** A BIGINT column as the server describes `LAST_INSERT_ID()` (unsigned) or `ROW_COUNT()` (signed). */
export function bigintColumn(name: string, unsigned: boolean): ColumnSpec {
  return { name, type: FieldType.LONGLONG, length: 21, flags: FieldFlag.NOT_NULL | FieldFlag.BINARY | FieldFlag.NUM | (unsigned ? FieldFlag.UNSIGNED : 0), charset: BINARY, decimals: 0 };
}

/** The columns of SHOW WARNINGS / SHOW ERRORS: Level, Code, Message. */
export const WARNING_COLUMNS: ColumnSpec[] = [
  { name: 'Level', type: FieldType.VAR_STRING, length: 7 * 4, flags: FieldFlag.NOT_NULL, charset: UTF8MB4, decimals: 31 },
  { name: 'Code', type: FieldType.LONG, length: 4, flags: FieldFlag.NOT_NULL | FieldFlag.UNSIGNED | FieldFlag.NUM, charset: BINARY, decimals: 0 },
  { name: 'Message', type: FieldType.VAR_STRING, length: 512 * 4, flags: FieldFlag.NOT_NULL, charset: UTF8MB4, decimals: 31 },
];

/** Protocol::ColumnDefinition41 (no table: a computed column). */
export function columnDefinition(c: ColumnSpec): Buffer {
  const fixed = Buffer.alloc(13);
  fixed[0] = 0x0c;
  fixed.writeUInt16LE(c.charset, 1);
  fixed.writeUInt32LE(c.length >>> 0, 3);
  fixed[7] = c.type;
  fixed.writeUInt16LE(c.flags, 8);
  fixed[10] = c.decimals;
  // 11, 12: filler
  const empty = lenencBytes('');
  return Buffer.concat([lenencBytes('def'), empty, empty, empty, lenencBytes(c.name), empty, fixed]);
}

/** A text-protocol row: each value a length-encoded string, NULL as 0xfb. */
export function textRow(values: (string | null)[]): Buffer {
  return Buffer.concat(values.map((v) => (v === null ? Buffer.from([0xfb]) : lenencBytes(v))));
}

/**
 * The payloads of a complete text result set: column count, definitions, an EOF
 * unless the client asked for DEPRECATE_EOF, rows, and the end (EOF, or an OK
 * with header 0xfe under DEPRECATE_EOF).
 */
export function textResultSet(columns: ColumnSpec[], rows: (string | null)[][], status: number, clientCaps: number): Buffer[] {
  const out: Buffer[] = [lenencInt(columns.length), ...columns.map(columnDefinition)];
  if ((clientCaps & Cap.DEPRECATE_EOF) === 0) out.push(buildEof({ warnings: 0, status }));
  for (const r of rows) out.push(textRow(r));
  out.push(buildEndOfRows(status, clientCaps));
  return out;
}

/** The payloads framed as consecutive packets from sequence id `seq`, as one buffer. */
export function framed(payloads: Buffer[], seq: number): Buffer {
  const parts: Buffer[] = [];
  let s = seq;
  for (const p of payloads) {
    const f = framePacket(p, s);
    parts.push(f.bytes);
    s = f.nextSeq;
  }
  return Buffer.concat(parts);
}

/** The values of the single row of a text result set (the payloads of the whole answer), or null if it has not exactly one row. */
export function singleTextRow(payloads: Buffer[]): (string | null)[] | null {
  if (payloads.length === 0) return null;
  const columns = new PayloadReader(payloads[0]!).lenenc();
  // count, definitions, [EOF], row, end
  let i = 1 + columns;
  if (payloads[i] && payloads[i]![0] === 0xfe && payloads[i]!.length < 9) i++;
  if (i !== payloads.length - 2) return null;
  const r = new PayloadReader(payloads[i]!);
  const out: (string | null)[] = [];
  for (let k = 0; k < columns; k++) {
    if (r.buf[r.pos] === 0xfb) {
      r.pos++;
      out.push(null);
    } else out.push(r.lenencBytes().toString('utf8'));
  }
  return out;
}

/** What a dependent read may ask of the previous statement, kept when its connection went back to the pool. */
export interface Aftermath {
  /** LAST_INSERT_ID() of the connection, as the server reported it; null if that could not be read. */
  lastInsertId: string | null;
  /** ROW_COUNT() of the previous statement, as the server reported it; null if that could not be read. */
  rowCount: string | null;
}

/** ROW_COUNT() / FOUND_ROWS() in a text not answered here: no other connection can give them once the linger went back. */
export const UNREPEATABLE = /\b(?:row_count|found_rows)\s*\(/i;

/** The error for a dependent statement that can neither be answered here nor run elsewhere exactly. */
export const AFTERMATH_GONE = {
  errno: 1105,
  sqlState: 'HY000',
  message:
    'switchyard: the connection of the previous statement went back to the pool (another client waited); ' +
    'only SELECT LAST_INSERT_ID(), SELECT ROW_COUNT(), SHOW WARNINGS and SHOW ERRORS (alone, as COM_QUERY) are answered for it, and LAST_INSERT_ID() elsewhere',
};

const IDENT = '[A-Za-z_][A-Za-z0-9_$]*';
const ALIAS = `(?:\\s+(?:as\\s+)?(?:(${IDENT})|\`((?:[^\`]|\`\`)+)\`|'([^'\\\\]*)'|"([^"\\\\]*)"))?`;
const EXACT_FN = new RegExp(`^\\s*select\\s+((last_insert_id|row_count)\\s*\\(\\s*\\))${ALIAS}\\s*;?\\s*$`, 'i');
const EXACT_SHOW = /^\s*show\s+(warnings|errors)\s*;?\s*$/i;
/** A bare word after the call that is a clause, not an alias. */
const NOT_ALIAS = new Set(['from', 'where', 'limit', 'into', 'for', 'lock', 'union', 'order', 'group', 'having', 'window', 'procedure', 'as', 'and', 'or', 'is', 'not', 'like', 'div', 'mod', 'xor', 'in', 'between', 'regexp', 'rlike']);

/**
 * The answer to `text` if it is exactly one of the reads answered from the
 * aftermath (`SELECT LAST_INSERT_ID()` / `SELECT ROW_COUNT()`, optionally with
 * an alias and a trailing `;`, or `SHOW WARNINGS` / `SHOW ERRORS`), else null.
 * The connection was given back only when the statement left no warnings and
 * no error, so SHOW WARNINGS / ERRORS are empty.
 */
export function answerFromAftermath(text: string, a: Aftermath, status: number, clientCaps: number): Buffer[] | null {
  if (EXACT_SHOW.test(text)) return textResultSet(WARNING_COLUMNS, [], status, clientCaps);
  const m = EXACT_FN.exec(text);
  if (!m) return null;
  const bare = m[3];
  if (bare !== undefined && NOT_ALIAS.has(bare.toLowerCase())) return null;
  const isLii = m[2]!.toLowerCase() === 'last_insert_id';
  const value = isLii ? a.lastInsertId : a.rowCount;
  if (value === null) return null;
  const name = bare ?? (m[4] !== undefined ? m[4].replace(/``/g, '`') : undefined) ?? m[5] ?? m[6] ?? m[1]!;
  return textResultSet([bigintColumn(name, isLii)], [[value]], status, clientCaps);
}
