import net from 'node:net';
import { hookClientReads } from './client-reads.js';

/** Splits `host:port` or `[v6]:port`. */
export function splitHostPort(address: string): { host: string; port: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(address) ?? /^([^:]*):(\d+)$/.exec(address);
  if (!m) throw new Error(`invalid listen address "${address}" (want host:port)`);
  return { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}

export interface BoundListener {
  address: string;
  /** The port actually bound (differs from the configured one when it was 0). */
  port: number;
  server: net.Server;
  /** Stop accepting; open connections are not touched. */
  close(): Promise<void>;
  /** Destroy every connection this listener accepted that is still open. */
  destroyConnections(): void;
}

/** Binds a TCP listener; resolves once it accepts connections, rejects if the bind fails. */
export function listen(address: string, onConnection: (socket: net.Socket) => void): Promise<BoundListener> {
  const { host, port } = splitHostPort(address);
  const open = new Set<net.Socket>();
  // One listener for every socket ('close' comes once): a closure plus a `once` wrapper per
  // socket cost each idle connection ~0.3 kB.
  const forget = function (this: net.Socket) {
    open.delete(this);
  };
  const server = net.createServer({ noDelay: true }, (socket) => {
    open.add(socket);
    socket.on('close', forget);
    onConnection(socket);
  });
  // Accept errors (EMFILE, ...) must not crash the process.
  server.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 1024 }, () => {
      server.removeListener('error', reject);
      hookClientReads(server);
      const bound = server.address() as net.AddressInfo;
      resolve({
        address,
        port: bound.port,
        server,
        // server.close() calls back only when every connection has ended: do not wait for that.
        close: () => {
          server.close();
          return Promise.resolve();
        },
        destroyConnections: () => {
          for (const s of open) s.destroy();
        },
      });
    });
  });
}
