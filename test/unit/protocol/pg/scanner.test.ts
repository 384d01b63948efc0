import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { PgStreamScanner } from '../../../../src/protocol/pg/scanner.js';

function frame(type: string, body: Buffer): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b.write(type, 0, 'latin1');
  b.writeInt32BE(body.length + 4, 1);
  body.copy(b, 5);
  return b;
}

const Z = 0x5a;
const S = 0x53;
const stream = Buffer.concat([
  frame('T', Buffer.alloc(30, 1)),
  frame('D', Buffer.alloc(70000, 2)), // larger than any capture, never wanted
  frame('S', Buffer.from('TimeZone\0UTC\0')),
  frame('C', Buffer.from('SELECT 1\0')),
  frame('Z', Buffer.from('T')),
  frame('n', Buffer.alloc(0)), // empty body
  frame('Z', Buffer.from('I')),
]);

function scan(chunks: Buffer[]): string[] {
  const seen: string[] = [];
  const s = new PgStreamScanner(new Set([Z, S]), (t, p) => seen.push(`${String.fromCharCode(t)}:${p ? p.toString('latin1') : '-'}`));
  for (const c of chunks) s.feed(c);
  expect(s.atBoundary).toBe(true);
  return seen;
}

const expected = ['T:-', 'D:-', 'S:TimeZone\0UTC\0', 'C:-', 'Z:T', 'n:-', 'Z:I'];

describe('PgStreamScanner', () => {
  it('reports every frame of a whole stream, with payloads only for wanted types', () => {
    expect(scan([stream])).toEqual(expected);
  });

  it('gives the same events when the stream is split at every byte offset', () => {
    for (let i = 1; i < stream.length; i += i < 200 || i > stream.length - 200 ? 1 : 997) {
      expect(scan([stream.subarray(0, i), stream.subarray(i)])).toEqual(expected);
    }
  });

  it('gives the same events for 1-byte chunks', () => {
    const small = Buffer.concat([frame('S', Buffer.from('a\0b\0')), frame('Z', Buffer.from('E')), frame('D', Buffer.alloc(9))]);
    const chunks = [...small].map((b) => Buffer.from([b]));
    const seen: string[] = [];
    const s = new PgStreamScanner(new Set([Z, S]), (t, p) => seen.push(`${String.fromCharCode(t)}:${p ? p.toString('latin1') : '-'}`));
    for (const c of chunks) s.feed(c);
    expect(seen).toEqual(['S:a\0b\0', 'Z:E', 'D:-']);
  });

  it('does not copy a wanted frame that lies inside one chunk', () => {
    const chunk = frame('Z', Buffer.from('I'));
    let payload: Buffer | null = null;
    new PgStreamScanner(new Set([Z]), (_t, p) => (payload = p)).feed(chunk);
    expect(payload!.buffer).toBe(chunk.buffer);
  });

  it('allocates no capture buffer for wanted frames that lie inside one chunk (one ReadyForQuery per transaction)', () => {
    const chunk = Buffer.concat([frame('C', Buffer.from('SELECT 1\0')), frame('S', Buffer.from('a\0b\0')), frame('Z', Buffer.from('I'))]);
    const spy = vi.spyOn(Buffer, 'allocUnsafe');
    try {
      const seen: string[] = [];
      new PgStreamScanner(new Set([Z, S]), (t, p) => seen.push(`${String.fromCharCode(t)}:${p ? p.toString('latin1') : '-'}`)).feed(chunk);
      expect(seen).toEqual(['C:-', 'S:a\0b\0', 'Z:I']);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  it('is chunking-independent for random frame sequences (property)', () => {
    const frameArb = fc.record({ type: fc.constantFrom('Z', 'S', 'D', 'C', 'E'), body: fc.uint8Array({ maxLength: 300 }) });
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 30 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames.map((f) => frame(f.type, Buffer.from(f.body))));
        const whole = scan([bytes]);
        const chunks: Buffer[] = [];
        let pos = 0;
        for (let i = 0; pos < bytes.length; i++) {
          const n = cuts[i % cuts.length]!;
          chunks.push(bytes.subarray(pos, pos + n));
          pos += n;
        }
        expect(scan(chunks)).toEqual(whole);
        expect(whole.length).toBe(frames.length);
      }),
      { numRuns: 300 },
    );
  });
});
