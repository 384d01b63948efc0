import type net from 'node:net';

/**
 * Reads a plain-TCP backend socket through `net.connect`'s `onread` option instead of
 * 'data' events. Why: with 'data', every read allocates a 64 kB managed buffer, shrinks it
 * into a new ArrayBuffer, wraps it in a Buffer and pushes it through a Readable stream; with
 * `onread` the kernel writes into one buffer this class hands out again and again, and the
 * chunk goes straight to the handler.
 *
 * The price is a rule for every consumer: a chunk is only valid during its handler call. A
 * consumer that keeps any view of it afterwards (a client socket write that did not complete
 * synchronously, bytes held back for later) calls `keep()`, and the next read gets a fresh buffer
 * while the old one stays with whoever holds it.
 */
export class SocketReads {
  /** Bytes read before anyone listens (between login and the connection object): copied. */
  private early: Buffer[] = [];
  private handler: ((chunk: Buffer) => void) | null = null;
  private buffer: Buffer;
  private kept = false;

  constructor(private readonly size = 64 * 1024) {
    this.buffer = Buffer.allocUnsafeSlow(size);
  }

  /** The `onread` option for net.connect. */
  options(): net.OnReadOpts {
    return {
      buffer: () => this.nextBuffer(),
      callback: (n: number, buf: Uint8Array) => {
        const chunk = (buf as Buffer).subarray(0, n);
        if (this.handler) this.handler(chunk);
        else this.early.push(Buffer.from(chunk));
        return true;
      },
    };
  }

  /** Routes every later chunk to `handler`; returns the chunks read while nobody listened. */
  listen(handler: ((chunk: Buffer) => void) | null): Buffer[] {
    this.handler = handler;
    const early = this.early;
    this.early = [];
    return early;
  }

  /** The current chunk is referenced past its handler call: never read into its buffer again. */
  keep(): void {
    this.kept = true;
  }

  private nextBuffer(): Buffer {
    if (this.kept) {
      this.buffer = Buffer.allocUnsafeSlow(this.size);
      this.kept = false;
    }
    return this.buffer;
  }
}
