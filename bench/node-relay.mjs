/**
 * The floor of any Node.js proxy: a TCP relay with HAProxy's layout (a write port to the
 * primary, a read port round-robin over the replicas) that parses nothing, pools nothing and
 * routes nothing per statement. It reads with switchyard's own means (accepted sockets through
 * src/frontend/client-reads.ts, upstream sockets through src/backend/socket-reads.ts), so what
 * it costs per transaction is what the Node runtime charges for moving the bytes: no Node proxy
 * can go below it, and switchyard's own work is the difference between the two. bench/run.ts
 * runs it as the system `node-relay`; bench/instructions*.ts count its instructions.
 *
 *   node bench/node-relay.mjs --write PORT --read PORT --primary PORT --replicas PORT,PORT
 *
 * Plain JavaScript on purpose: it runs on `node` with no loader, like dist/cli.js (npm run build first).
 */
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const args = new Map();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1]);
const primary = Number(args.get('primary'));
const replicas = String(args.get('replicas') ?? '').split(',').filter(Boolean).map(Number);
if (!args.get('write') || !args.get('read') || !primary || replicas.length === 0) {
  console.error('usage: node-relay.mjs --write PORT --read PORT --primary PORT --replicas PORT,PORT');
  process.exit(2);
}

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const load = (path) => import(pathToFileURL(join(DIST, path)).href);
const { hookClientReads } = await load('frontend/client-reads.js');
const { SocketReads } = await load('backend/socket-reads.js');

/** One relayed connection: client <-> upstream, with backpressure both ways. */
function relay(client, upstreamPort) {
  client.setNoDelay(true);
  const reads = new SocketReads();
  const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true, onread: reads.options() });
  reads.listen((chunk) => {
    const more = client.write(chunk);
    // What the client socket did not take at once still points into the read buffer.
    if (client.writableLength > 0) reads.keep();
    if (!more) { upstream.pause(); client.once('drain', () => upstream.resume()); }
  });
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
