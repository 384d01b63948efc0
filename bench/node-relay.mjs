/**
 * The floor of any Node.js proxy: a TCP relay with HAProxy's layout (a write port to the
 * primary, a read port round-robin over the replicas) that parses nothing, pools nothing and
 * routes nothing per statement. It reads with the same means switchyard uses (accepted
 * sockets through switchyard's `onread` hook, upstream sockets through `net.connect`'s
 * `onread` into a reused buffer), so what it costs per transaction is what the Node runtime
 * charges for moving the bytes: no Node proxy can go below it, and switchyard's own work is
 * the difference between the two. bench/run.ts runs it as the system `node-relay`.
 *
 *   node bench/node-relay.mjs --write PORT --read PORT --primary PORT --replicas PORT,PORT
 *        [--plain]   (default 'data' reads on both sides instead of onread)
 *
 * Plain JavaScript on purpose: it runs on `node` with no loader, like dist/cli.js.
 */
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const args = new Map();
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--plain') args.set('plain', true);
  else args.set(a.replace(/^--/, ''), process.argv[++i]);
}
const plain = args.get('plain') === true;
const primary = Number(args.get('primary'));
const replicas = String(args.get('replicas') ?? '').split(',').filter(Boolean).map(Number);
if (!args.get('write') || !args.get('read') || !primary || replicas.length === 0) {
  console.error('usage: node-relay.mjs --write PORT --read PORT --primary PORT --replicas PORT,PORT [--plain]');
  process.exit(2);
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { hookClientReads } = plain ? { hookClientReads: () => false } : await import(pathToFileURL(join(ROOT, 'dist', 'frontend', 'client-reads.js')).href);

/** One relayed connection: client <-> upstream, with backpressure both ways. */
function relay(client, upstreamPort) {
  client.setNoDelay(true);
  let buffer = Buffer.allocUnsafeSlow(64 * 1024);
  const upstreamOptions = { host: '127.0.0.1', port: upstreamPort, noDelay: true };
  if (!plain) {
    upstreamOptions.onread = {
      buffer: () => buffer,
      callback: (n, buf) => {
        const more = client.write(buf.subarray(0, n));
        // A write the kernel did not take at once still points into `buffer`: read the next
        // chunk into a new one (the same rule as src/backend/socket-reads.ts).
        if (client.writableLength > 0) buffer = Buffer.allocUnsafeSlow(64 * 1024);
        if (!more) { upstream.pause(); client.once('drain', () => upstream.resume()); }
        return true;
      },
    };
  }
  const upstream = net.connect(upstreamOptions);
  if (plain) {
    upstream.on('data', (d) => {
      if (!client.write(d)) { upstream.pause(); client.once('drain', () => upstream.resume()); }
    });
  }
  client.on('data', (d) => {
    if (!upstream.write(d)) { client.pause(); upstream.once('drain', () => client.resume()); }
  });
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on('close', close);
  upstream.on('close', close);
  client.on('error', close);
  upstream.on('error', close);
}

let next = 0;
function listen(port, pick) {
  const server = net.createServer((client) => relay(client, pick()));
  server.listen(port, '127.0.0.1', () => hookClientReads(server));
  return server;
}
const servers = [
  listen(Number(args.get('write')), () => primary),
  listen(Number(args.get('read')), () => replicas[next++ % replicas.length]),
];
const stop = () => { for (const s of servers) s.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
