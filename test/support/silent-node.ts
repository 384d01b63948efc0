import net from 'node:net';

/**
 * A TCP listener on 127.0.0.1 standing in for a database node: it forwards to `target`
 * until hang() (or from the start without a target), then accepts every new connection
 * and never sends a byte. Connections forwarded before hang() keep working. Counts what
 * it accepted while silent.
 */
export class SilentNode {
  port = 0;
  acceptedWhileSilent = 0;
  private silent: boolean;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(private readonly target: { host: string; port: number } | null) {
    this.silent = target === null;
    this.server = net.createServer((s) => this.accept(s));
  }

  static async start(target: { host: string; port: number } | null = null): Promise<SilentNode> {
    const n = new SilentNode(target);
    await new Promise<void>((r) => n.server.listen(0, '127.0.0.1', r));
    n.port = (n.server.address() as net.AddressInfo).port;
    return n;
  }

  hang(): void {
    this.silent = true;
  }

  private accept(s: net.Socket): void {
    this.sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => this.sockets.delete(s));
    if (this.silent || !this.target) {
      this.acceptedWhileSilent++;
      return;
    }
    const up = net.connect(this.target);
    up.on('error', () => s.destroy());
    s.on('close', () => up.destroy());
    up.on('close', () => s.destroy());
    s.pipe(up);
    up.pipe(s);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
