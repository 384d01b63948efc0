import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { listen, type BoundListener } from '../../../src/frontend/listen.js';

/** Whether Node reads this socket through `onread` (its kBuffer slot is set). */
function readsIntoUserBuffer(socket: net.Socket): boolean {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'kBuffer');
  return sym !== undefined && Boolean((socket as unknown as Record<symbol, unknown>)[sym]);
}

let bound: BoundListener | undefined;
afterEach(async () => {
  bound?.destroyConnections();
  await bound?.close();
  bound = undefined;
});

/** A client that sends `payload` in `pieces` writes and resolves with everything echoed back. */
function roundTrip(port: number, payload: Buffer, pieces: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let n = 0;
    c.on('data', (d) => {
      got.push(d);
      n += d.length;
      if (n >= payload.length) {
        c.end();
        resolve(Buffer.concat(got));
      }
    });
    c.on('error', reject);
    const step = Math.ceil(payload.length / pieces);
    for (let i = 0; i < payload.length; i += step) c.write(payload.subarray(i, i + step));
  });
}

describe('accepted client sockets read through one shared buffer', () => {
  it('the listener builds its sockets with onread (so the hook is live on this Node)', async () => {
    const accepted: net.Socket[] = [];
    bound = await listen('127.0.0.1:0', (s) => {
      accepted.push(s);
      s.on('data', (d) => s.write(d));
    });
    const back = await roundTrip(bound.port, Buffer.from('ping'), 1);
    expect(back.toString()).toBe('ping');
    expect(accepted).toHaveLength(1);
    expect(readsIntoUserBuffer(accepted[0]!)).toBe(true);
    expect((accepted[0] as unknown as { server: net.Server }).server).toBe(bound.server);
  });

  it('chunks kept past their event stay intact while 20 sockets read through the same buffer at once', async () => {
    // Every chunk is queued and echoed only later: a view into the shared buffer would be
    // overwritten by other sockets' reads before it is written back.
    bound = await listen('127.0.0.1:0', (s) => {
      const held: Buffer[] = [];
      s.on('data', (d) => {
        held.push(d);
        setTimeout(() => s.write(held.shift()!), 5);
      });
    });
    const payloads = Array.from({ length: 20 }, () => randomBytes(200_000));
    const backs = await Promise.all(payloads.map((p) => roundTrip(bound!.port, p, 50)));
    backs.forEach((b, i) => expect(b.equals(payloads[i]!), `socket ${i}`).toBe(true));
  });

  it('pause() stops the deliveries and resume() brings the rest; end arrives after the last chunk', async () => {
    const events: string[] = [];
    let total = 0;
    const done = new Promise<void>((resolve) => {
      void listen('127.0.0.1:0', (s) => {
        s.on('data', (d) => {
          total += d.length;
          events.push('data');
          s.pause();
          setTimeout(() => {
            events.push('resume');
            s.resume();
          }, 2);
        });
        s.on('end', () => {
          events.push('end');
          resolve();
        });
      }).then((b) => {
        bound = b;
        const c = net.connect(b.port, '127.0.0.1', () => {
          c.write(randomBytes(300_000));
          c.end();
        });
      });
    });
    await done;
    expect(total).toBe(300_000);
    expect(events[events.length - 1]).toBe('end');
    // Paused means no delivery until resumed: never two 'data' in a row.
    for (let i = 1; i < events.length; i++) if (events[i] === 'data') expect(events[i - 1]).toBe('resume');
  });
});
