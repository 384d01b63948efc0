import net from 'node:net';
import fc from 'fast-check';
import pg from 'pg';
import { PgCluster, type PgClusterInfo } from '../../src/devcluster/pg.js';
import { drive, newPhase, runPhase, sampleUntil, tally, type Outcome, type PhaseResult } from './fuzz-common.js';

/**
 * Frame-aware fuzzing of the PostgreSQL frontend over real sockets (issue 10, item 1).
 * Each input must end in a protocol error and a closed connection, or a correct answer:
 * never a hang (after the client half-closes, the proxy must close). The caller checks
 * crashes, unhandled rejections and leaked backend connections (fuzz-common.ts).
 * Shared by test/integration/hardening-pg-fuzz.test.ts and bench/fuzz.ts.
 */

const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n | 0); return b; };
const cstr = (s: string) => Buffer.from(s + '\0');

// ---- generators that know the frame formats -------------------------------------------

/** A length field: usually right, sometimes off by a little, negative, tiny or huge. */
const lengthFor = (right: number) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant(right) },
    { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }).map((d) => right + d) },
    { weight: 1, arbitrary: fc.constantFrom(-1, 0, 3, 7, 0x7fffffff, 64 * 1024 * 1024 + 1, 10_000_000) },
  );

const ident = fc.string({ maxLength: 12 });
const startupParams = fc.array(fc.tuple(fc.constantFrom('user', 'database', 'application_name', 'replication', 'options', '_pq_.x', 'client_encoding', ''), ident), { maxLength: 5 });

/** Untyped packets of the startup phase. */
const startupPacket = fc.oneof(
  // StartupMessage with a maybe-wrong version and random parameters (maybe missing the final NUL).
  fc.tuple(fc.constantFrom(196608, 196609, 131072, 0, 80877103, 80877102, 80877104), startupParams, fc.boolean()).chain(([ver, params, term]) => {
    const body = Buffer.concat([i32(ver), ...params.map(([k, v]) => Buffer.concat([cstr(k), cstr(v)])), term ? Buffer.from([0]) : Buffer.alloc(0)]);
    return lengthFor(body.length + 4).map((len) => Buffer.concat([i32(len), body]));
  }),
  // SSLRequest / GSSENCRequest, maybe with a tail.
  fc.tuple(fc.constantFrom(80877103, 80877104), fc.uint8Array({ maxLength: 4 })).chain(([code, tail]) =>
    lengthFor(8 + tail.length).map((len) => Buffer.concat([i32(len), i32(code), Buffer.from(tail)]))),
  // CancelRequest with random pid/secret.
  fc.tuple(fc.integer(), fc.integer()).chain(([pid, key]) => lengthFor(16).map((len) => Buffer.concat([i32(len), i32(80877102), i32(pid), i32(key)]))),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
);

/** A typed frame: type byte, length, payload. */
function typed(type: number, payload: Buffer, rightLength = false) {
  const len = rightLength ? fc.constant(payload.length + 4) : lengthFor(payload.length + 4);
  return len.map((l) => Buffer.concat([Buffer.from([type]), i32(l), payload]));
}

/** Password/SASL messages ('p') with valid-looking and broken contents. */
const passwordMessage = fc.oneof(
  fc.tuple(fc.constantFrom('SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS', 'PLAIN', ''), fc.constantFrom('n,,n=,r=abc', 'p=tls-server-end-point,,n=,r=x', 'y,,n=,r=\u0001', 'garbage', ''), fc.integer({ min: -2, max: 40 }))
    .chain(([mech, data, dlen]) => typed(0x70, Buffer.concat([cstr(mech), i32(dlen === 40 ? Buffer.byteLength(data) : dlen), Buffer.from(data)]))),
  fc.string({ maxLength: 40 }).chain((s) => typed(0x70, cstr(s))),
  fc.uint8Array({ maxLength: 40 }).chain((a) => typed(0x70, Buffer.from(a))),
);

const sqlText = fc.oneof(fc.constantFrom('SELECT 1', 'SELECT $1::int', 'BEGIN', 'ROLLBACK', 'COMMIT', 'SELEC', 'SELECT 1; SELECT 2', ''), fc.string({ maxLength: 20 }));
/**
 * Messages of the ready phase, most with wrong fields. framed: lengths right and
 * only types a client may send, so the session processes the whole batch.
 */
const readyMessageOf = (framed: boolean) => fc.oneof(
  sqlText.chain((q) => typed(0x51, cstr(q), framed)), // Query
  // Parse: framed sessions get a parameter count that matches the OIDs (wrong OIDs, names, SQL);
  // the others may get a count that disagrees.
  fc.tuple(ident, sqlText, fc.array(fc.integer(), { maxLength: 3 }), fc.integer({ min: 0, max: 5 }))
    .chain(([n, q, oids, count]) => typed(0x50, Buffer.concat([cstr(n), cstr(q), Buffer.from([0, framed ? oids.length : count]), ...oids.map(i32)]), framed)), // Parse
  fc.tuple(ident, ident, fc.integer({ min: -1, max: 3 }), fc.array(fc.uint8Array({ maxLength: 8 }), { maxLength: 3 }))
    .chain(([portal, stmt, nfmt, params]) => typed(0x42, Buffer.concat([cstr(portal), cstr(stmt), Buffer.from([0, framed ? 0 : nfmt & 0xff]), Buffer.from([0, params.length]), ...params.map((p) => Buffer.concat([i32(p.length), Buffer.from(p)])), Buffer.from([0, 0])]), framed)), // Bind
  fc.tuple(fc.constantFrom(0x53, 0x50, 0x41), ident).chain(([k, n]) => typed(0x44, Buffer.concat([Buffer.from([k]), cstr(n)]), framed)), // Describe
  fc.tuple(ident, fc.integer()).chain(([p, max]) => typed(0x45, Buffer.concat([cstr(p), i32(max)]), framed)), // Execute
  fc.tuple(fc.constantFrom(0x53, 0x50, 0x41), ident).chain(([k, n]) => typed(0x43, Buffer.concat([Buffer.from([k]), cstr(n)]), framed)), // Close
  fc.constant(Buffer.from([0x48, 0, 0, 0, 4])), // Flush
  fc.uint8Array({ maxLength: 16 }).chain((a) => typed(0x64, Buffer.from(a), framed)), // CopyData outside COPY
  ...(framed
    ? []
    : [
        fc.constantFrom(0x63, 0x66, 0x46, 0x70, 0x00, 0xff, 0x5a).chain((t) => fc.uint8Array({ maxLength: 8 }).chain((a) => typed(t, Buffer.from(a), framed))),
        fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)), // raw bytes
      ]),
);

/** One startup-phase connection: 1-6 packets, one in five truncated. */
const startupSession = fc.tuple(fc.array(fc.oneof(startupPacket, startupPacket, passwordMessage), { minLength: 1, maxLength: 6 }), fc.nat(200));

/**
 * One logged-in session: three in four get `frames` well-framed messages with wrong fields
 * (the session must work through the whole batch and answer the final query); the rest get
 * 1-20 messages with broken framing too, since the first violation ends the session.
 */
const readySession = (frames: number) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.array(readyMessageOf(true), { minLength: frames, maxLength: frames }).map((m) => ({ framed: true, frames: m })) },
    { weight: 1, arbitrary: fc.array(readyMessageOf(false), { minLength: 1, maxLength: 20 }).map((m) => ({ framed: false, frames: m })) },
  );

// ---- drivers --------------------------------------------------------------------------

export interface PgStartupOptions {
  port: number;
  /** Stop once this many packets were generated. */
  inputs: number;
  seed?: number;
  /** Connections in parallel (default 64). */
  width?: number;
}

/** Startup phase: random startup/SSL/GSSENC/cancel/password packets, truncated and concatenated. */
export async function fuzzPgStartup(o: PgStartupOptions): Promise<PhaseResult> {
  const r = newPhase('pg startup');
  return runPhase(r, sampleUntil(startupSession, o.seed ?? 42, o.inputs, ([f]) => f.length), o.width ?? 64, async ([frames, cut]) => {
    let bytes = Buffer.concat(frames);
    if (cut % 5 === 0) bytes = bytes.subarray(0, Math.max(1, bytes.length - 1 - (cut % 7))); // truncated
    r.inputs += frames.length;
    r.conns++;
    const s = net.connect({ host: '127.0.0.1', port: o.port });
    s.on('error', () => undefined);
    const connected = await new Promise<boolean>((res) => { s.once('connect', () => res(true)); s.once('close', () => res(false)); });
    // No answer is expected (most packets are wrong): only a close.
    const { outcome } = connected ? await drive(s, bytes, { quietMs: 50, closeMs: 3000 }) : { outcome: 'closed' as Outcome };
    tally(r, outcome, () => bytes);
    s.destroy();
  });
}

export interface PgReadyOptions {
  /** A connection string to the proxy. */
  url: string;
  inputs: number;
  /** Messages per well-framed session (default 250). */
  frames?: number;
  seed?: number;
  /** Sessions in parallel (default 16). */
  width?: number;
  /** Half-close after this long without a byte from the proxy (default 1000 ms). */
  quietMs?: number;
  /** Called after each session, e.g. to look for a leak one session at a time. */
  afterSession?: (outcome: Outcome, frames: Buffer[]) => Promise<void>;
}

export interface PgReadyResult extends PhaseResult {
  framedSessions: number;
  framedAnswered: number;
}

/** Ready phase: batches of malformed messages on logged-in sessions, then Sync and a marker query. */
export async function fuzzPgReady(o: PgReadyOptions): Promise<PgReadyResult> {
  const r: PgReadyResult = { ...newPhase('pg ready'), framedSessions: 0, framedAnswered: 0 };
  return runPhase(r, sampleUntil(readySession(o.frames ?? 250), o.seed ?? 7, o.inputs, (b) => b.frames.length), o.width ?? 16, async ({ framed, frames }) => {
    const c = new pg.Client({ connectionString: o.url });
    await c.connect();
    // Take the logged-in socket away from node-postgres and speak raw protocol on it.
    const s = (c as unknown as { connection: { stream: net.Socket } }).connection.stream;
    s.removeAllListeners('data');
    s.removeAllListeners('end');
    s.removeAllListeners('close');
    const marker = `fuzz_done_${r.conns}`;
    const q = `SELECT '${marker}'`;
    const tail = Buffer.concat([Buffer.from([0x53, 0, 0, 0, 4]), Buffer.from([0x51]), i32(4 + Buffer.byteLength(q) + 1), cstr(q)]);
    r.inputs += frames.length;
    r.conns++;
    if (framed) r.framedSessions++;
    // A wrong length can leave the proxy waiting for bytes that never come: that is correct
    // until the client stops sending; after the half-close it must close.
    const { outcome } = await drive(s, Buffer.concat([...frames, tail]), { quietMs: o.quietMs ?? 1000, closeMs: 4000, marker });
    tally(r, outcome, () => Buffer.concat(frames));
    if (outcome === 'answered' && framed) r.framedAnswered++;
    s.destroy();
    await o.afterSession?.(outcome, frames);
  });
}

/** Counts the app user's client backends a PostgreSQL node of `info` shows (the monitor's excluded). */
export function pgBackendCount(info: PgClusterInfo): (node: string) => Promise<number> {
  const cluster = PgCluster.attach(info);
  const sql = "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'client backend' AND application_name <> 'switchyard-monitor'";
  return async (node) => (await cluster.query<{ n: number }>(node, sql, [info.users.app.user]))[0]!.n;
}
