import type { Socket } from 'node:net';
import { MysqlPacketReader, type MysqlPacket } from '../../protocol/mysql/index.js';
import type { SocketReads } from '../socket-reads.js';

/**
 * The packets of one socket during a backend login, awaited one at a time.
 * Its own reader per socket: the plain socket's before a TLS upgrade (the
 * server sends nothing between the handshake and the TLS hello), the TLS
 * socket's after it; the last one goes on into the command phase with
 * whatever partial packet it holds.
 */
export class LoginChannel {
  readonly reader = new MysqlPacketReader({ maxMessageSize: 1 << 30 });
  private readonly queue: MysqlPacket[] = [];
  private waiter: { resolve(p: MysqlPacket): void; reject(e: Error): void } | null = null;
  private failure: Error | null = null;
  private readonly onData = (chunk: Buffer) => {
    try {
      for (const p of this.reader.push(chunk)) this.queue.push(p);
    } catch (e) {
      return this.fail(e as Error);
    }
    this.wake();
  };
  private readonly onError = (e: Error) => this.fail(e);
  private readonly onClose = () => this.fail(this.closedError());

  constructor(
    readonly socket: Socket,
    /** The error for a socket that closes before the login finished. */
    private readonly closedError: () => Error,
    /** The socket is read with `onread`: its chunks are copied (login packets are awaited, so kept). */
    private readonly reads: SocketReads | null = null,
  ) {
    if (reads) reads.listen((chunk) => this.onData(Buffer.from(chunk)));
    else socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /** The next packet; rejects once the socket failed or closed. */
  next(): Promise<MysqlPacket> {
    const p = this.queue.shift();
    if (p) return Promise.resolve(p);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Stops listening; returns the packets that arrived but were not asked for (normally none). */
  detach(): MysqlPacket[] {
    if (this.reads) this.reads.listen(null);
    else this.socket.removeListener('data', this.onData);
    this.socket.removeListener('error', this.onError);
    this.socket.removeListener('close', this.onClose);
    return this.queue.splice(0);
  }

  private wake(): void {
    const w = this.waiter;
    const p = w && this.queue.shift();
    if (!w || !p) return;
    this.waiter = null;
    w.resolve(p);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const w = this.waiter;
    this.waiter = null;
    w?.reject(this.failure);
  }
}
