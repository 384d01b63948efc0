import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ResponseFilter, type EntryKind } from '../../../src/frontend/pg/response-filter.js';
import { msg } from '../../../src/protocol/pg/index.js';

/** A backend frame of any type with a body. */
function frame(type: string, body = ''): Buffer {
  const b = Buffer.from(body);
  const out = Buffer.alloc(5 + b.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
}

const ready = frame('Z', 'I');
const parseComplete = frame('1');
const bindComplete = frame('2');
const closeComplete = frame('3');
const rowDesc = frame('T', 'rowdesc');
const dataRow = (n: number) => frame('D', `row-${n}-${'x'.repeat(n % 7)}`);
const commandComplete = frame('C', 'SELECT 1\0');
const error = frame('E', 'SERROR\0C42P01\0\0');
const notice = frame('N', 'SNOTICE\0\0');
const paramStatus = frame('S', 'application_name\0x\0');

interface Step {
  kind: EntryKind;
  swallow?: boolean;
  synthetic?: Buffer;
}

/** Feeds `stream` in chunks cut at `cuts` and returns everything the client would get. */
function run(steps: Step[], stream: Buffer, cuts: number[] = []): { out: Buffer; skipped: number } {
  const f = new ResponseFilter();
  let skipped = 0;
  const early: Buffer[] = [];
  for (const s of steps) {
    if (s.synthetic) f.synthesize(s.kind, s.synthetic);
    else f.expect(s.kind, s.swallow ?? false, () => skipped++);
    early.push(...f.takeReadySynthetic());
  }
  const parts: Buffer[] = [...early];
  let prev = 0;
  for (const c of [...cuts, stream.length]) {
    parts.push(...f.feed(stream.subarray(prev, c)));
    prev = c;
  }
  return { out: Buffer.concat(parts), skipped };
}

/** Every way to split `stream` at one offset gives the same output as no split. */
function expectSplitInvariant(steps: Step[], stream: Buffer, want: Buffer): void {
  expect(run(steps, stream).out).toEqual(want);
  for (let i = 1; i < stream.length; i++) expect(run(steps, stream, [i]).out, `split at ${i}`).toEqual(want);
}

describe('ResponseFilter', () => {
  it('passes an ordinary extended batch through unchanged', () => {
    const steps: Step[] = [{ kind: 'parse' }, { kind: 'bind' }, { kind: 'describe' }, { kind: 'execute' }, { kind: 'sync' }];
    const stream = Buffer.concat([parseComplete, bindComplete, rowDesc, dataRow(1), dataRow(2), commandComplete, ready]);
    expectSplitInvariant(steps, stream, stream);
  });

  it('swallows the answers to messages the proxy added (state replay, injected Parse)', () => {
    const steps: Step[] = [{ kind: 'query', swallow: true }, { kind: 'parse', swallow: true }, { kind: 'bind' }, { kind: 'execute' }, { kind: 'sync' }];
    const replay = Buffer.concat([paramStatus, frame('C', 'RESET\0'), frame('C', 'SET\0'), ready]);
    const stream = Buffer.concat([replay, parseComplete, bindComplete, dataRow(3), commandComplete, ready]);
    const want = Buffer.concat([bindComplete, dataRow(3), commandComplete, ready]);
    expectSplitInvariant(steps, stream, want);
  });

  it('puts made-up answers where PostgreSQL would have sent them', () => {
    // Bind/Execute of S0, then the client's Parse of S1 (already prepared: synthetic), Bind, Execute, Sync.
    const steps: Step[] = [
      { kind: 'bind' },
      { kind: 'execute' },
      { kind: 'parse', synthetic: msg.parseComplete() },
      { kind: 'bind' },
      { kind: 'execute' },
      { kind: 'close', synthetic: msg.closeComplete() },
      { kind: 'sync' },
    ];
    const stream = Buffer.concat([bindComplete, dataRow(1), commandComplete, bindComplete, dataRow(2), commandComplete, ready]);
    const want = Buffer.concat([bindComplete, dataRow(1), commandComplete, parseComplete, bindComplete, dataRow(2), commandComplete, closeComplete, ready]);
    expectSplitInvariant(steps, stream, want);
  });

  it('sends a synthetic answer at once when nothing is outstanding before it', () => {
    const f = new ResponseFilter();
    f.synthesize('parse', msg.parseComplete());
    expect(f.takeReadySynthetic()).toEqual([parseComplete]);
    f.expect('sync');
    expect(f.feed(ready)).toEqual([ready]);
  });

  it('after an error, drops the unanswered entries up to Sync (synthetic ones too) and reports skips', () => {
    const steps: Step[] = [
      { kind: 'parse', swallow: true },
      { kind: 'bind' },
      { kind: 'execute' },
      { kind: 'parse', synthetic: msg.parseComplete() },
      { kind: 'sync' },
    ];
    const stream = Buffer.concat([error, ready]);
    const r = run(steps, stream);
    // The injected Parse failed: its error reaches the client, whose Bind is skipped.
    expect(r.out).toEqual(Buffer.concat([error, ready]));
    expect(r.skipped).toBe(3);
  });

  it('forwards the error of a client message and counts it', () => {
    const f = new ResponseFilter();
    f.expect('parse');
    f.expect('bind');
    f.expect('sync');
    expect(Buffer.concat(f.feed(Buffer.concat([error, ready])))).toEqual(Buffer.concat([error, ready]));
    expect(f.errorSinceReady).toBe(true);
  });

  it('keeps notices and notifications in place; drops a swallowed query’s notices but never a notification', () => {
    const notification = frame('A', '\0\0\0\x01chan\0payload\0');
    const steps: Step[] = [{ kind: 'query', swallow: true }, { kind: 'query' }];
    const stream = Buffer.concat([notice, notification, frame('C', 'SET\0'), ready, notice, commandComplete, ready]);
    const want = Buffer.concat([notification, notice, commandComplete, ready]);
    expectSplitInvariant(steps, stream, want);
  });

  it('drops an ErrorResponse that answers nothing (a FATAL right after ReadyForQuery), keeps what came before', () => {
    const fatal = frame('E', 'SFATAL\0C57P01\0Mterminating connection due to administrator command\0\0');
    const steps: Step[] = [{ kind: 'query' }];
    const stream = Buffer.concat([rowDesc, dataRow(1), commandComplete, ready, fatal]);
    expectSplitInvariant(steps, stream, Buffer.concat([rowDesc, dataRow(1), commandComplete, ready]));
  });

  it('a simple query answers errors and rows until its ReadyForQuery', () => {
    const steps: Step[] = [{ kind: 'query' }];
    const stream = Buffer.concat([rowDesc, dataRow(1), commandComplete, error, ready]);
    expectSplitInvariant(steps, stream, stream);
  });

  it('property: any chunking of a mixed stream gives the same output', () => {
    const steps: Step[] = [
      { kind: 'query', swallow: true },
      { kind: 'parse', swallow: true },
      { kind: 'parse', synthetic: msg.parseComplete() },
      { kind: 'bind' },
      { kind: 'describe' },
      { kind: 'execute' },
      { kind: 'close', synthetic: msg.closeComplete() },
      { kind: 'sync' },
    ];
    const rows = Array.from({ length: 20 }, (_, i) => dataRow(i));
    const stream = Buffer.concat([notice, frame('C', 'SET\0'), ready, parseComplete, bindComplete, frame('t', 'params'), rowDesc, ...rows, commandComplete, ready]);
    const want = Buffer.concat([parseComplete, bindComplete, frame('t', 'params'), rowDesc, ...rows, commandComplete, closeComplete, ready]);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 12 }), (cuts) => {
        expect(run(steps, stream, cuts.sort((a, b) => a - b)).out).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });
});
