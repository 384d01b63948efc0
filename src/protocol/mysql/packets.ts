import { Cap, EOF_HEADER, ERR_HEADER, OK_HEADER } from './constants.js';
import { PayloadReader, lenencInt } from './lenenc.js';

export interface OkPacket {
  affectedRows: number;
  lastInsertId: number;
  status: number;
  warnings: number;
  /** Human-readable info and session-state data, undecoded. */
  rest: Buffer;
}

export interface ErrPacket {
  errno: number;
  sqlState: string;
  message: string;
}

export interface EofPacket {
  warnings: number;
  status: number;
}

/** An OK packet: header 0x00, or 0xfe with DEPRECATE_EOF when it ends a resultset (payload longer than an EOF). */
export function isOk(payload: Buffer): boolean {
  return payload.length >= 7 && (payload[0] === OK_HEADER || payload[0] === EOF_HEADER);
}

/** A classic EOF packet: header 0xfe and under 9 bytes (a longer 0xfe is a row or an OK). */
export function isEof(payload: Buffer): boolean {
  return payload.length > 0 && payload.length < 9 && payload[0] === EOF_HEADER;
}

export function isErr(payload: Buffer): boolean {
  return payload.length > 0 && payload[0] === ERR_HEADER;
}

/** Parses an OK packet (PROTOCOL_41 layout). Throws PROTOCOL_VIOLATION when truncated. */
export function parseOk(payload: Buffer): OkPacket {
  const r = new PayloadReader(payload, 1);
  const affectedRows = r.lenenc();
  const lastInsertId = r.lenenc();
  const status = r.u16();
  const warnings = r.u16();
  return { affectedRows, lastInsertId, status, warnings, rest: r.rest() };
}

export function parseErr(payload: Buffer): ErrPacket {
  const r = new PayloadReader(payload, 1);
  const errno = r.u16();
  let sqlState = 'HY000';
  if (r.remaining >= 6 && payload[r.pos] === 0x23 /* # */) {
    r.pos += 1;
    sqlState = r.bytes(5).toString('latin1');
  }
  return { errno, sqlState, message: r.rest().toString('utf8') };
}

export function parseEof(payload: Buffer): EofPacket {
  const r = new PayloadReader(payload, 1);
  if (r.remaining < 4) return { warnings: 0, status: 0 };
  const warnings = r.u16();
  return { warnings, status: r.u16() };
}

export function buildOk(o: Partial<OkPacket> & { status: number }, header = OK_HEADER): Buffer {
  const fixed = Buffer.alloc(4);
  fixed.writeUInt16LE(o.status, 0);
  fixed.writeUInt16LE(o.warnings ?? 0, 2);
  return Buffer.concat([
    Buffer.from([header]),
    lenencInt(o.affectedRows ?? 0),
    lenencInt(o.lastInsertId ?? 0),
    fixed,
    o.rest ?? Buffer.alloc(0),
  ]);
}

/** The packet that ends a resultset: an EOF, or with DEPRECATE_EOF an OK with header 0xfe. */
export function buildEndOfRows(status: number, capabilities: number): Buffer {
  return capabilities & Cap.DEPRECATE_EOF ? buildOk({ status }, EOF_HEADER) : buildEof({ status, warnings: 0 });
}

export function buildEof(e: EofPacket): Buffer {
  const b = Buffer.alloc(5);
  b[0] = EOF_HEADER;
  b.writeUInt16LE(e.warnings, 1);
  b.writeUInt16LE(e.status, 3);
  return b;
}

export function buildErr(e: ErrPacket): Buffer {
  const head = Buffer.alloc(9);
  head[0] = ERR_HEADER;
  head.writeUInt16LE(e.errno, 1);
  head[3] = 0x23;
  head.write(e.sqlState.padEnd(5, '0').slice(0, 5), 4, 'latin1');
  return Buffer.concat([head, Buffer.from(e.message, 'utf8')]);
}
