import { ErrorCodes, SwitchyardError } from '../../errors.js';

/*
 * Builders for the PostgreSQL messages the proxy itself sends, in both
 * directions. Each returns one fresh Buffer holding the whole frame. None of
 * them is on the per-row hot path (rows are forwarded as received).
 */

/** Assembles a frame from parts: strings become NUL-terminated UTF-8, numbers int32, Buffers as is. */
type Part = { s: string } | { i32: number } | { i16: number } | { b: Buffer } | { byte: number };

function frame(type: string | null, parts: Part[]): Buffer {
  let size = 4;
  const encoded: (Buffer | number | Part)[] = [];
  for (const p of parts) {
    if ('s' in p) {
      const b = cstringBytes(p.s);
      encoded.push(b, 0);
      size += b.length + 1;
    } else if ('b' in p) {
      encoded.push(p.b);
      size += p.b.length;
    } else if ('i32' in p) {
      encoded.push(p);
      size += 4;
    } else if ('i16' in p) {
      encoded.push(p);
      size += 2;
    } else {
      encoded.push(p.byte);
      size += 1;
    }
  }
  const head = type === null ? 0 : 1;
  const out = Buffer.allocUnsafe(head + size);
  let pos = 0;
  if (type !== null) out[pos++] = type.charCodeAt(0);
  out.writeInt32BE(size, pos);
  pos += 4;
  for (const e of encoded) {
    if (typeof e === 'number') out[pos++] = e;
    else if (Buffer.isBuffer(e)) {
      e.copy(out, pos);
      pos += e.length;
    } else if ('i32' in e) {
      out.writeInt32BE(e.i32, pos);
      pos += 4;
    } else if ('i16' in e) {
      out.writeInt16BE(e.i16, pos);
      pos += 2;
    }
  }
  return out;
}

/** A NUL inside a string would end it early on the wire and shift every later field. */
function cstringBytes(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.includes(0)) throw new SwitchyardError(ErrorCodes.INTERNAL, 'a protocol string cannot contain a NUL byte');
  return bytes;
}

const s = (v: string): Part => ({ s: v });
const i32 = (v: number): Part => ({ i32: v });
const i16 = (v: number): Part => ({ i16: v });
const b = (v: Buffer): Part => ({ b: v });
const byte = (v: string): Part => ({ byte: v.charCodeAt(0) });
const data = (v: string | Buffer): Buffer => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v);


export interface ErrorFieldsIn {
  severity: string;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

function errorParts(f: ErrorFieldsIn): Part[] {
  const parts: Part[] = [byte('S'), s(f.severity), byte('V'), s(f.severity), byte('C'), s(f.code), byte('M'), s(f.message)];
  if (f.detail) parts.push(byte('D'), s(f.detail));
  if (f.hint) parts.push(byte('H'), s(f.hint));
  parts.push({ byte: 0 });
  return parts;
}

export const msg = {
  // ---- backend -> client
  authenticationOk: () => frame('R', [i32(0)]),
  authenticationCleartextPassword: () => frame('R', [i32(3)]),
  authenticationMD5Password: (salt: Buffer) => frame('R', [i32(5), b(salt)]),
  authenticationSASL: (mechanisms: string[]) => frame('R', [i32(10), ...mechanisms.map(s), { byte: 0 }]),
  authenticationSASLContinue: (d: string | Buffer) => frame('R', [i32(11), b(data(d))]),
  authenticationSASLFinal: (d: string | Buffer) => frame('R', [i32(12), b(data(d))]),
  parameterStatus: (name: string, value: string) => frame('S', [s(name), s(value)]),
  backendKeyData: (pid: number, secret: number) => frame('K', [i32(pid), i32(secret)]),
  readyForQuery: (status: 'I' | 'T' | 'E') => frame('Z', [byte(status)]),
  errorResponse: (f: ErrorFieldsIn & { severity: 'ERROR' | 'FATAL' | 'PANIC' }) => frame('E', errorParts(f)),
  noticeResponse: (f: ErrorFieldsIn) => frame('N', errorParts(f)),
  commandComplete: (tag: string) => frame('C', [s(tag)]),
  emptyQueryResponse: () => frame('I', []),
  parseComplete: () => frame('1', []),
  bindComplete: () => frame('2', []),
  closeComplete: () => frame('3', []),
  noData: () => frame('n', []),
  negotiateProtocolVersion: (newestMinor: number, unrecognized: string[]) =>
    frame('v', [i32((3 << 16) | newestMinor), i32(unrecognized.length), ...unrecognized.map(s)]),
  /** The one-byte answers to SSLRequest/GSSENCRequest (not frames). */
  sslNo: () => Buffer.from('N'),
  sslYes: () => Buffer.from('S'),

  // ---- client -> server
  startupMessage: (params: Record<string, string>) =>
    frame(null, [i32(196608), ...Object.entries(params).flatMap(([k, v]) => [s(k), s(v)]), { byte: 0 }]),
  sslRequest: () => frame(null, [i32(80877103)]),
  cancelRequest: (pid: number, secret: number) => frame(null, [i32(80877102), i32(pid), i32(secret)]),
  passwordMessage: (password: string) => frame('p', [s(password)]),
  saslInitialResponse: (mechanism: string, d: string | Buffer) => {
    const bytes = data(d);
    return frame('p', [s(mechanism), i32(bytes.length), b(bytes)]);
  },
  saslResponse: (d: string | Buffer) => frame('p', [b(data(d))]),
  query: (sql: string) => frame('Q', [s(sql)]),
  parse: (name: string, query: string, paramTypes: number[] = []) => frame('P', [s(name), s(query), i16(paramTypes.length), ...paramTypes.map((t) => i32(t | 0))]),
  bind: (portal: string, statement: string, params: (Buffer | null)[]) =>
    frame('B', [
      s(portal),
      s(statement),
      i16(0),
      i16(params.length),
      ...params.flatMap((p) => (p === null ? [i32(-1)] : [i32(p.length), b(p)])),
      i16(0),
    ]),
  describe: (kind: 'S' | 'P', name: string) => frame('D', [byte(kind), s(name)]),
  execute: (portal: string, maxRows = 0) => frame('E', [s(portal), i32(maxRows)]),
  close: (kind: 'S' | 'P', name: string) => frame('C', [byte(kind), s(name)]),
  sync: () => frame('S', []),
  flush: () => frame('H', []),
  terminate: () => frame('X', []),
};

const TYPE_PARSE = 0x50; // 'P'
const TYPE_BIND = 0x42; // 'B'
const TYPE_DESCRIBE = 0x44; // 'D'
const TYPE_CLOSE = 0x43; // 'C' (frontend Close)

/**
 * Replaces the statement name of a Parse frame (its first string), copying
 * the query text and parameter types untouched.
 */
export function rewriteParseName(frame: Buffer, newName: string): Buffer {
  checkFrame(frame, [TYPE_PARSE], 'Parse');
  return replaceCString(frame, 5, newName, 'Parse');
}

/** Replaces the statement name (the second string) of a Bind frame; parameters are copied as bytes. */
export function rewriteBindStatement(frame: Buffer, newStatement: string): Buffer {
  checkFrame(frame, [TYPE_BIND], 'Bind');
  const portalEnd = frame.indexOf(0, 5);
  if (portalEnd < 0) throw malformed('Bind');
  return replaceCString(frame, portalEnd + 1, newStatement, 'Bind');
}

/** Replaces the name of a Describe or Close frame (after its 'S'/'P' byte). */
export function rewriteDescribeOrCloseName(frame: Buffer, newName: string): Buffer {
  checkFrame(frame, [TYPE_DESCRIBE, TYPE_CLOSE], 'Describe/Close');
  if (frame.length < 6 || (frame[5] !== 0x53 && frame[5] !== 0x50)) throw malformed('Describe/Close');
  return replaceCString(frame, 6, newName, 'Describe/Close');
}

function malformed(what: string): SwitchyardError {
  return new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `malformed ${what} message`);
}

/** A whole frame of one of the expected types whose length field matches its size. */
function checkFrame(frame: Buffer, types: number[], what: string): void {
  if (frame.length < 5 || !types.includes(frame[0]!) || frame.readInt32BE(1) !== frame.length - 1) throw malformed(what);
}

/** 1. Find the string's end. 2. Copy head, new string, tail. 3. Fix the length field. */
function replaceCString(frame: Buffer, at: number, value: string, what: string): Buffer {
  const end = frame.indexOf(0, at);
  if (end < 0) throw malformed(what);
  const replacement = cstringBytes(value);
  const out = Buffer.allocUnsafe(frame.length - (end - at) + replacement.length);
  frame.copy(out, 0, 0, at);
  replacement.copy(out, at);
  frame.copy(out, at + replacement.length, end);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}
