import { expect } from 'vitest';
import { PgFrameReader, type PgFrame } from '../../../../src/protocol/pg/index.js';

/** A copy in an ArrayBuffer of its own: Node pools small Buffers, which would make `.buffer` identity checks meaningless. */
export function isolated(bytes: Buffer | Uint8Array): Buffer {
  const out = Buffer.from(new ArrayBuffer(bytes.length));
  out.set(bytes);
  return out;
}

/** A typed frame built by hand (independent of the builders under test). */
export function typedFrame(type: string, body: Buffer | Uint8Array): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + body.length, 1);
  out.set(body, 5);
  return out;
}

/** Frames a buffer that must hold exactly one whole frame. */
export function only(frame: Buffer, startup = false): PgFrame {
  const frames = new PgFrameReader({ maxMessageSize: 1 << 20, startup }).push(frame);
  expect(frames).toHaveLength(1);
  expect(frames[0]!.raw.equals(frame)).toBe(true);
  return frames[0]!;
}

/** Cuts bytes into consecutive chunks whose sizes cycle through `sizes` (all >= 1). */
export function chunked(bytes: Buffer, sizes: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let pos = 0, i = 0; pos < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    chunks.push(bytes.subarray(pos, pos + n));
    pos += n;
  }
  return chunks;
}

export const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
