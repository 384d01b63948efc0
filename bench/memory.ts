/**
 * Memory bench: opens N idle, logged-in client connections to a running switchyard (raw sockets:
 * startup + SCRAM-SHA-256 with the proxy's own ScramClient) and reports its RSS growth per
 * connection. Used by bench/run.ts (`--only memory`); standalone:
 *   tsx bench/memory.ts --port 6432 --pid <switchyard pid> [--connections 10000]
 * The file-descriptor limit of this process must allow N sockets (`ulimit -n 65536` in the shell).
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { ScramClient } from '../src/protocol/pg/auth.js';

export interface MemoryResult {
  ok: boolean;
  error?: string | undefined;
  connections: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  perConnKb: number;
  loginSeconds: number;
}

function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}
function frame(type: string, body: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}
function startup(user: string, db: string): Buffer {
  const body = Buffer.from(`user\0${user}\0database\0${db}\0\0`);
  const b = Buffer.alloc(8);
  b.writeInt32BE(body.length + 8, 0);
  b.writeInt32BE(196608, 4);
  return Buffer.concat([b, body]);
}

/** One logged-in connection: resolves when ReadyForQuery arrives. */
function login(port: number, user: string, password: string, db: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const scram = new ScramClient(user, password);
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => { s.destroy(); reject(new Error('login timeout')); }, 60_000);
    s.once('error', (e) => { clearTimeout(timer); reject(e); });
    s.on('connect', () => s.write(startup(user, db)));
    s.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 5) {
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) break;
        const type = String.fromCharCode(buf[0]!);
        const body = buf.subarray(5, len + 1);
        buf = buf.subarray(len + 1);
        if (type === 'R') {
          const code = body.readInt32BE(0);
          if (code === 10) {
            const first = Buffer.from(scram.clientFirstMessage());
            const mech = Buffer.from('SCRAM-SHA-256\0');
            const n = Buffer.alloc(4);
            n.writeInt32BE(first.length, 0);
            s.write(frame('p', Buffer.concat([mech, n, first])));
          } else if (code === 11) {
            s.write(frame('p', Buffer.from(scram.handleServerFirst(body.subarray(4).toString()))));
          } else if (code === 12) {
            scram.verifyServerFinal(body.subarray(4).toString());
          } else if (code !== 0) {
            clearTimeout(timer); s.destroy(); reject(new Error(`unsupported auth ${code}`)); return;
          }
        } else if (type === 'E') {
          clearTimeout(timer); s.destroy(); reject(new Error(`server error: ${body.toString('latin1').replace(/\0/g, ' ')}`)); return;
        } else if (type === 'Z') {
          clearTimeout(timer); s.removeAllListeners('data'); s.on('error', () => undefined); resolve(s); return;
        }
      }
    });
  });
}

export async function runMemoryBench(o: { port: number; pid: number; connections: number; user?: string; password?: string; db?: string; concurrency?: number }): Promise<MemoryResult> {
  const sockets: net.Socket[] = [];
  const before = rssKb(o.pid);
  const t0 = Date.now();
  let error: string | undefined;
  let next = 0;
  const worker = async () => {
    while (next < o.connections && !error) {
      next++;
      try { sockets.push(await login(o.port, o.user ?? 'app', o.password ?? 'app', o.db ?? 'app')); } catch (e) { error = `after ${sockets.length} connections: ${(e as Error).message}`; }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 32 }, worker));
  const loginSeconds = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssKb(o.pid);
  for (const s of sockets) s.destroy();
  const n = sockets.length;
  return { ok: !error && n === o.connections, error, connections: n, rssBeforeKb: before, rssAfterKb: after, perConnKb: n ? (after - before) / n : NaN, loginSeconds };
}

if (process.argv[1]?.endsWith('memory.ts')) {
  const a = process.argv.slice(2);
  const get = (k: string) => a[a.indexOf(k) + 1];
  runMemoryBench({ port: Number(get('--port')), pid: Number(get('--pid')), connections: Number(a.includes('--connections') ? get('--connections') : 10_000) })
    .then((r) => console.log(JSON.stringify(r)))
    .catch((e) => { console.error(e); process.exit(1); });
}
