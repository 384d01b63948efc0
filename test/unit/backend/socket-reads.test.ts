import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { SocketReads } from '../../../src/backend/socket-reads.js';

/** A server that sends `chunks` one by one, each after the client has read the previous. */
async function exchange(chunks: string[], onChunk: (reads: SocketReads, chunk: Buffer) => void): Promise<void> {
  const server = net.createServer((s) => {
    let i = 0;
    const next = () => (i < chunks.length ? s.write(chunks[i++]!) : s.end());
    s.on('data', next); // the client asks for the next chunk
    next();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const reads = new SocketReads(64);
  const socket = net.connect({ host: '127.0.0.1', port, onread: reads.options() });
  reads.listen((chunk) => {
    onChunk(reads, chunk);
    socket.write('n');
  });
  await new Promise<void>((r) => socket.on('close', () => r()));
  server.close();
}

describe('SocketReads', () => {
  it('delivers every chunk in order, and a view kept without keep() is overwritten by the next read', async () => {
    const seen: string[] = [];
    const views: Buffer[] = [];
    await exchange(['first', 'second', 'third'], (_reads, chunk) => {
      seen.push(chunk.toString());
      views.push(chunk);
    });
    expect(seen).toEqual(['first', 'second', 'third']);
    // The reuse this class exists for: all three views share one buffer.
    expect(views[0]!.buffer).toBe(views[2]!.buffer);
    expect(views[0]!.toString()).not.toBe('first');
  });

  it('after keep() the kept chunk stays intact and the next read goes into a fresh buffer', async () => {
    const views: Buffer[] = [];
    await exchange(['first', 'second', 'third'], (reads, chunk) => {
      views.push(chunk);
      reads.keep();
    });
    expect(views.map((v) => v.toString())).toEqual(['first', 'second', 'third']);
    expect(views[0]!.buffer).not.toBe(views[1]!.buffer);
  });

  it('copies chunks that arrive while nobody listens and hands them to the next listener', async () => {
    const server = net.createServer((s) => s.end('early bytes'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const reads = new SocketReads(64);
    const socket = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, onread: reads.options() });
    await new Promise<void>((r) => socket.on('close', () => r()));
    server.close();
    expect(Buffer.concat(reads.listen(() => undefined)).toString()).toBe('early bytes');
  });
});
