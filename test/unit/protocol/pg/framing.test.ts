import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PgFrameReader, msg, parseStartupPacket, type PgFrame } from '../../../../src/protocol/pg/index.js';
import { ErrorCodes, SwitchyardError } from '../../../../src/errors.js';
import { chunked, isolated, typedFrame } from './helpers.js';

const MAX = 1 << 20;
const stream = Buffer.concat([
  msg.query('SELECT 1'),
  msg.parse('', 'SELECT $1', [23]),
  msg.bind('', '', [Buffer.from('1')]),
  msg.execute(''),
  msg.sync(),
  typedFrame('d', Buffer.alloc(0)), // empty body
  msg.query('x'.repeat(3000)),
]);
const typesOf = (frames: PgFrame[]) => frames.map((f) => String.fromCharCode(f.type)).join('');
const code = (c: string) => expect.objectContaining({ code: c });

describe('PgFrameReader: splitting', () => {
  const whole = new PgFrameReader({ maxMessageSize: MAX }).push(stream).map((f) => Buffer.from(f.raw));

  it('frames a whole stream into typed frames with payload = raw minus the 5-byte header', () => {
    const frames = new PgFrameReader({ maxMessageSize: MAX }).push(stream);
    expect(typesOf(frames)).toBe('QPBESdQ');
    for (const f of frames) expect(f.payload.equals(f.raw.subarray(5))).toBe(true);
    expect(Buffer.concat(frames.map((f) => f.raw)).equals(stream)).toBe(true);
  });

  it('yields the same frames for a stream split at every byte offset', () => {
    for (let i = 0; i <= stream.length; i++) {
      const r = new PgFrameReader({ maxMessageSize: MAX });
      const got = [...r.push(stream.subarray(0, i)), ...r.push(stream.subarray(i))];
      expect(got.length).toBe(whole.length);
      // Buffer.equals per frame: a deep toEqual over 3,000 offsets takes seconds.
      got.forEach((f, k) => expect(f.raw.equals(whole[k]!)).toBe(true));
      expect(r.buffered).toBe(0);
    }
  });

  it('yields the same frames from 1-byte chunks, holding the partial bytes meanwhile', () => {
    const r = new PgFrameReader({ maxMessageSize: MAX });
    const got: Buffer[] = [];
    let fed = 0;
    for (const byte of stream) {
      for (const f of r.push(Buffer.from([byte]))) got.push(f.raw);
      fed++;
      expect(r.buffered).toBe(fed - got.reduce((n, f) => n + f.length, 0));
    }
    expect(got.length).toBe(whole.length);
    got.forEach((f, k) => expect(f.equals(whole[k]!)).toBe(true));
  });

  it('assembles a large frame that arrives in many chunks', () => {
    const body = Buffer.alloc(300_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const big = typedFrame('d', body);
    const r = new PgFrameReader({ maxMessageSize: MAX });
    const frames = chunked(big, [1000, 1, 4093]).flatMap((c) => r.push(c));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.raw.equals(big)).toBe(true);
    expect(frames[0]!.payload.equals(body)).toBe(true);
  });
});

describe('PgFrameReader: zero copy', () => {
  it('returns views sharing the chunk memory when a frame lies inside one chunk', () => {
    const chunk = isolated(stream);
    const frames = new PgFrameReader({ maxMessageSize: MAX }).push(chunk);
    for (const f of frames) {
      expect(f.raw.buffer).toBe(chunk.buffer);
      expect(f.payload.buffer).toBe(chunk.buffer);
    }
    // Shared memory, not just a shared pool: a write to the chunk shows in the frame.
    chunk[6] = 0x21;
    expect(frames[0]!.payload[1]).toBe(0x21);
  });

  it('copies only the frame that spans chunks; frames after it are views of the new chunk', () => {
    const [a, b, c] = [msg.query('first'), msg.query('spanning frame'), msg.query('third')];
    const cut = a.length + 7;
    const bytes = Buffer.concat([a, b, c]);
    const chunk1 = isolated(bytes.subarray(0, cut));
    const chunk2 = isolated(bytes.subarray(cut));
    const r = new PgFrameReader({ maxMessageSize: MAX });
    const [f1] = r.push(chunk1);
    const [f2, f3] = r.push(chunk2);
    expect(f1!.raw.buffer).toBe(chunk1.buffer);
    expect(f2!.raw.equals(b)).toBe(true);
    expect(f2!.raw.buffer).not.toBe(chunk1.buffer);
    expect(f2!.raw.buffer).not.toBe(chunk2.buffer);
    expect(f3!.raw.buffer).toBe(chunk2.buffer);
    expect(f3!.raw.equals(c)).toBe(true);
  });
});

describe('PgFrameReader: errors', () => {
  it('rejects a length below 4 with PROTOCOL_VIOLATION, a negative one too', () => {
    expect(() => new PgFrameReader({ maxMessageSize: 100 }).push(Buffer.from([0x51, 0, 0, 0, 3]))).toThrow(code(ErrorCodes.PROTOCOL_VIOLATION));
    expect(() => new PgFrameReader({ maxMessageSize: 100 }).push(Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff]))).toThrow(code(ErrorCodes.PROTOCOL_VIOLATION));
  });

  it('accepts a length equal to the limit and rejects one above with MESSAGE_TOO_LARGE', () => {
    expect(new PgFrameReader({ maxMessageSize: 100 }).push(typedFrame('d', Buffer.alloc(96)))).toHaveLength(1);
    expect(() => new PgFrameReader({ maxMessageSize: 100 }).push(typedFrame('d', Buffer.alloc(97)))).toThrow(code(ErrorCodes.MESSAGE_TOO_LARGE));
  });

  it('rejects an oversized frame as soon as its header is complete, before the body arrives', () => {
    const r = new PgFrameReader({ maxMessageSize: 100 });
    expect(r.push(Buffer.from([0x44, 0, 0]))).toEqual([]);
    expect(() => r.push(Buffer.from([0x10, 0]))).toThrow(code(ErrorCodes.MESSAGE_TOO_LARGE));
  });

  it('refuses all further input after an error and drops what it held', () => {
    const r = new PgFrameReader({ maxMessageSize: 100 });
    expect(() => r.push(Buffer.concat([msg.sync(), Buffer.from([0x51, 0, 0, 0, 2])]))).toThrow(SwitchyardError);
    expect(() => r.push(msg.sync())).toThrow(code(ErrorCodes.PROTOCOL_VIOLATION));
    expect(() => r.feed(msg.sync())).toThrow(SwitchyardError);
    expect(() => r.next()).toThrow(SwitchyardError);
    expect(r.buffered).toBe(0);
  });

  it('rejects a startup length below 8', () => {
    const r = new PgFrameReader({ maxMessageSize: 100, startup: true });
    expect(() => r.push(Buffer.from([0, 0, 0, 7]))).toThrow(code(ErrorCodes.PROTOCOL_VIOLATION));
    expect(new PgFrameReader({ maxMessageSize: 100, startup: true }).push(Buffer.from([0, 0, 0, 8, 0, 3, 0, 0]))).toHaveLength(1);
  });
});

describe('PgFrameReader: startup mode and hand-over', () => {
  it('frames an 8-byte SSLRequest, then a startup packet, then typed messages after setStartup(false)', () => {
    const r = new PgFrameReader({ maxMessageSize: MAX, startup: true });
    const [ssl] = r.push(msg.sslRequest());
    expect(ssl!.type).toBe(0);
    expect(ssl!.raw.length).toBe(8);
    expect(parseStartupPacket(ssl!.payload)).toEqual({ kind: 'ssl' });
    const [st] = r.push(msg.startupMessage({ user: 'a' }));
    expect(parseStartupPacket(st!.payload)).toMatchObject({ kind: 'startup', params: { user: 'a' } });
    r.setStartup(false);
    expect(typesOf(r.push(msg.query('SELECT 1')))).toBe('Q');
  });

  it('feed/next switches mode between two frames that arrived in one chunk', () => {
    const r = new PgFrameReader({ maxMessageSize: MAX, startup: true });
    r.feed(Buffer.concat([msg.startupMessage({ user: 'a' }), msg.passwordMessage('pw'), msg.query('SELECT 1')]));
    expect(r.next()!.type).toBe(0);
    r.setStartup(false);
    expect(String.fromCharCode(r.next()!.type)).toBe('p');
    expect(r.buffered).toBe(msg.query('SELECT 1').length);
    expect(String.fromCharCode(r.next()!.type)).toBe('Q');
    expect(r.next()).toBeNull();
  });

  it('a mode switch in the middle of a frame applies from the next frame', () => {
    const r = new PgFrameReader({ maxMessageSize: MAX, startup: true });
    const startup = msg.startupMessage({ user: 'a' });
    expect(r.push(startup.subarray(0, 6))).toEqual([]);
    r.setStartup(false);
    const frames = r.push(Buffer.concat([startup.subarray(6), msg.sync()]));
    expect(frames.map((f) => f.type)).toEqual([0, 0x53]);
    expect(frames[0]!.raw.equals(startup)).toBe(true);
  });

  it('takeRemainder returns every byte not yet returned as a frame, in order, and forgets them', () => {
    const r = new PgFrameReader({ maxMessageSize: MAX });
    const tail = msg.query('pipelined');
    r.feed(Buffer.concat([msg.sync(), tail.subarray(0, 3)]));
    r.feed(tail.subarray(3, 9)); // queued behind the unread first chunk
    expect(r.next()!.type).toBe(0x53);
    expect(r.buffered).toBe(9);
    expect(r.next()).toBeNull(); // consumes the queued chunk into a partial frame
    r.feed(tail.subarray(9, 12));
    expect(r.takeRemainder().equals(tail.subarray(0, 12))).toBe(true);
    expect(r.buffered).toBe(0);
    expect(r.takeRemainder().length).toBe(0);
    expect(r.push(msg.sync())).toHaveLength(1);
  });

  it('is lossless: frames plus remainder reproduce the input (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 8 }), fc.nat(60), fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 5 }), (bodies, cutTail, sizes) => {
        const all = Buffer.concat(bodies.map((b) => typedFrame('D', b)));
        const input = all.subarray(0, Math.max(0, all.length - cutTail));
        const r = new PgFrameReader({ maxMessageSize: MAX });
        const out: Buffer[] = [];
        for (const c of chunked(input, sizes)) for (const f of r.push(c)) out.push(Buffer.from(f.raw));
        expect(Buffer.concat([...out, r.takeRemainder()]).equals(input)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('PgFrameReader: fuzz', () => {
  it('never throws anything but SwitchyardError on arbitrary bytes, with push or feed/next and mode switches', () => {
    const step = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.boolean());
    fc.assert(
      fc.property(fc.boolean(), fc.boolean(), fc.array(step, { maxLength: 25 }), (startup, useNext, steps) => {
        const r = new PgFrameReader({ maxMessageSize: 4096, startup });
        try {
          for (const s of steps) {
            if (typeof s === 'boolean') r.setStartup(s);
            else if (useNext) {
              r.feed(Buffer.from(s));
              for (let i = 0; i < 100 && r.next(); i++);
            } else r.push(Buffer.from(s));
          }
        } catch (e) {
          expect(e).toBeInstanceOf(SwitchyardError);
          expect([ErrorCodes.PROTOCOL_VIOLATION, ErrorCodes.MESSAGE_TOO_LARGE]).toContain((e as SwitchyardError).code);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('round-trips random frame sequences, with a startup prelude, through random chunking (property)', () => {
    const frameArb = fc.tuple(fc.constantFrom('Q', 'P', 'B', 'd', 'S', 'E', 'X'), fc.uint8Array({ maxLength: 200 })).map(([t, body]) => typedFrame(t, body));
    const startupArb = fc.uint8Array({ minLength: 4, maxLength: 40 }).map((rest) => {
      const f = Buffer.alloc(4 + rest.length);
      f.writeInt32BE(f.length, 0);
      f.set(rest, 4);
      return f;
    });
    fc.assert(
      fc.property(fc.option(startupArb), fc.array(frameArb, { maxLength: 15 }), fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }), (startup, frames, sizes) => {
        const bytes = Buffer.concat([...(startup ? [startup] : []), ...frames]);
        const r = new PgFrameReader({ maxMessageSize: MAX, startup: startup !== null });
        r.setStartup(startup !== null);
        const out: Buffer[] = [];
        for (const c of chunked(bytes, sizes)) {
          r.feed(c);
          for (let f = r.next(); f; f = r.next()) {
            out.push(Buffer.from(f.raw));
            if (f.type === 0) r.setStartup(false);
          }
        }
        expect(out).toEqual(startup ? [startup, ...frames] : frames);
        expect(r.buffered).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});
