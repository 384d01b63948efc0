import { describe, expect, it } from 'vitest';
import { ClientSink } from '../../../src/frontend/mysql/sink.js';
import { MysqlPacketReader, framePacket } from '../../../src/protocol/mysql/index.js';

/** A client socket stand-in that records each write (and whether it came corked). */
function owner() {
  const writes: Buffer[] = [];
  const socket = { write: (b: Buffer) => (writes.push(Buffer.from(b)), true), cork: () => undefined, uncork: () => undefined };
  return { writes, o: { socket, running: null, paused: null, startInfile: () => undefined } as never };
}

const chunkOf = (payloads: string[], seq0 = 1) => Buffer.concat(payloads.map((p, i) => framePacket(Buffer.from(p), seq0 + i).bytes));

describe('ClientSink', () => {
  it('forwards the contiguous packets of one chunk as one write of exactly those bytes', () => {
    const { writes, o } = owner();
    const sink = new ClientSink(o);
    const chunk = chunkOf(['row-1', 'row-22', 'row-333', 'eof']);
    for (const p of new MysqlPacketReader({ maxMessageSize: 1 << 20 }).push(chunk)) sink.packet(p);
    sink.flush();
    expect(writes).toHaveLength(1);
    expect(writes[0]!.equals(chunk)).toBe(true);
    expect(sink.nextSeq).toBe(5);
  });

  it('packets of two chunks make two parts, in order; nothing is written before flush', () => {
    const { writes, o } = owner();
    const sink = new ClientSink(o);
    const a = chunkOf(['a1', 'a2']);
    const b = chunkOf(['b1'], 3);
    const reader = new MysqlPacketReader({ maxMessageSize: 1 << 20 });
    for (const p of reader.push(a)) sink.packet(p);
    for (const p of reader.push(b)) sink.packet(p);
    expect(writes).toHaveLength(0);
    sink.flush();
    expect(Buffer.concat(writes).equals(Buffer.concat([a, b]))).toBe(true);
    sink.flush();
    expect(Buffer.concat(writes).length).toBe(a.length + b.length);
  });

  it('a sequence shift (rewritten execute) renumbers every packet', () => {
    const { writes, o } = owner();
    const sink = new ClientSink(o);
    sink.delta = 1;
    for (const p of new MysqlPacketReader({ maxMessageSize: 1 << 20 }).push(chunkOf(['x', 'y']))) sink.packet(p);
    sink.flush();
    const out = Buffer.concat(writes);
    expect(out.equals(chunkOf(['x', 'y'], 2))).toBe(true);
  });
});
