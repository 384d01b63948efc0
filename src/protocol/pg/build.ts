/*
 * Builders for the PostgreSQL messages the proxy itself sends, in both
 * directions. Each returns one fresh Buffer holding the whole frame.
 */

/** Assembles a frame from parts: strings become NUL-terminated UTF-8, numbers int32, Buffers as is. */
type Part = { s: string } | { i32: number } | { i16: number } | { b: Buffer } | { byte: number };

function frame(type: string | null, parts: Part[]): Buffer {
  let size = 4;
  const encoded: (Buffer | number | Part)[] = [];
  for (const p of parts) {
    if ('s' in p) {
      const b = Buffer.from(p.s, 'utf8');
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

const s = (v: string): Part => ({ s: v });
const i32 = (v: number): Part => ({ i32: v });
const i16 = (v: number): Part => ({ i16: v });
const b = (v: Buffer): Part => ({ b: v });
const byte = (v: string): Part => ({ byte: v.charCodeAt(0) });
const data = (v: string | Buffer): Buffer => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v);

const SSL_NO = Buffer.from('N');
const SSL_YES = Buffer.from('S');

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
  sslNo: () => SSL_NO,
  sslYes: () => SSL_YES,

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

/**
 * Replaces the leading name (a C string right after the type and length) of a
 * Parse frame, keeping the rest of the bytes untouched.
 */
export function rewriteParseName(raw: Buffer, newName: string): Buffer {
  return replaceCString(raw, 5, newName);
}

/** Replaces the statement name (the second C string) of a Bind frame. */
export function rewriteBindStatement(raw: Buffer, newStatement: string): Buffer {
  const portalEnd = raw.indexOf(0, 5);
  return replaceCString(raw, portalEnd + 1, newStatement);
}

/** Replaces the name of a Describe or Close frame (after its 'S'/'P' byte). */
export function rewriteDescribeOrCloseName(raw: Buffer, newName: string): Buffer {
  return replaceCString(raw, 6, newName);
}

function replaceCString(raw: Buffer, at: number, value: string): Buffer {
  const end = raw.indexOf(0, at);
  const v = Buffer.from(value, 'utf8');
  const out = Buffer.allocUnsafe(raw.length - (end - at) + v.length);
  raw.copy(out, 0, 0, at);
  v.copy(out, at);
  raw.copy(out, at + v.length, end);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}
