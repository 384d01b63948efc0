import { ErrorCodes, SwitchyardError } from '../../errors.js';

/**
 * A cursor over one packet payload. Every read checks bounds and throws
 * PROTOCOL_VIOLATION on truncation, so decoders of hostile input never read
 * past the payload or return garbage silently.
 */
export class PayloadReader {
  pos: number;
  constructor(readonly buf: Buffer, pos = 0) {
    this.pos = pos;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  private need(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'mysql packet truncated');
    }
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u24(): number {
    this.need(3);
    const v = this.buf.readUIntLE(this.pos, 3);
    this.pos += 3;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  /** Length-encoded integer. 0xfb (NULL) and 0xff are not integers here. Values above 2^53 throw. */
  lenenc(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    if (first === 0xfc) return this.u16();
    if (first === 0xfd) return this.u24();
    if (first === 0xfe) {
      this.need(8);
      const v = this.buf.readBigUInt64LE(this.pos);
      this.pos += 8;
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'mysql lenenc integer too large');
      }
      return Number(v);
    }
    throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `mysql lenenc integer with prefix 0x${first.toString(16)}`);
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  lenencBytes(): Buffer {
    return this.bytes(this.lenenc());
  }
  /** NUL-terminated; throws if there is no NUL. */
  nulBytes(): Buffer {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'mysql string without terminator');
    const v = this.buf.subarray(this.pos, end);
    this.pos = end + 1;
    return v;
  }
  nulString(): string {
    return this.nulBytes().toString('utf8');
  }
  rest(): Buffer {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }
}

/** Encodes a length-encoded integer. */
export function lenencInt(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`lenenc out of range: ${n}`);
  if (n < 0xfb) return Buffer.from([n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = 0xfc;
    b.writeUInt16LE(n, 1);
    return b;
  }
  if (n < 0x1000000) {
    const b = Buffer.alloc(4);
    b[0] = 0xfd;
    b.writeUIntLE(n, 1, 3);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

export function lenencBytes(v: Buffer | string): Buffer {
  const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  return Buffer.concat([lenencInt(b.length), b]);
}
