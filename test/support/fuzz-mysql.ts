import net from 'node:net';
import fc from 'fast-check';
import { connectMysql } from '../../src/backend/mysql/connect.js';
import { MariaCluster, type MariaClusterInfo } from '../../src/devcluster/mariadb.js';
import { Cap, Com, MysqlPacketReader, buildHandshakeResponse, nativePasswordToken, parseHandshakeV10 } from '../../src/protocol/mysql/index.js';
import { drive, newPhase, runPhase, sampleUntil, tally, type Outcome, type PhaseResult } from './fuzz-common.js';

/**
 * Frame-aware fuzzing of the MySQL frontend over real sockets (issue 10, item 1). Each
 * input must end in an ERR packet and a close, or a correct answer: never a hang (after
 * the client half-closes, the proxy must close within 3 s). The caller checks crashes,
 * unhandled rejections and leaked backend connections (fuzz-common.ts).
 * Shared by test/integration/hardening-mysql-fuzz.test.ts and bench/fuzz.ts.
 */

// ---- generators that know the packet format (3-byte length, sequence id, payload) ------

const u24 = (n: number) => { const b = Buffer.alloc(3); b.writeUIntLE(n & 0xffffff, 0, 3); return b; };
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return b; };

/** A length field: usually right, sometimes off by a little, zero or huge. */
const lengthFor = (right: number) =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant(right) },
    { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }).map((d) => Math.max(0, right + d)) },
    { weight: 1, arbitrary: fc.constantFrom(0, 1, 0xffffff, 0xfffffe, 70_000, 2_000_000) },
  );
/** A sequence id: usually the expected one, sometimes any. */
const seqFor = (right: number) => fc.oneof({ weight: 4, arbitrary: fc.constant(right) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) });

function packet(payload: Buffer, seq: number) {
  return fc.tuple(lengthFor(payload.length), seqFor(seq)).map(([len, s]) => Buffer.concat([u24(len), Buffer.from([s]), payload]));
}

export interface MysqlLoginInfo { user: string; password: string }

type Handshaker = (nonce: Buffer) => Buffer;

/** Handshake-phase generators for a proxy that knows `app` (so that a right token can be sent). */
function handshakeArbs(app: MysqlLoginInfo) {
  const ident = fc.oneof(fc.constantFrom('app', app.user, 'root', 'mysql', '', 'information_schema'), fc.string({ maxLength: 10 }));
  const plugins = fc.oneof(fc.constantFrom('mysql_native_password', 'caching_sha2_password', 'mysql_clear_password', 'auth_gssapi_client', 'client_ed25519', ''), fc.string({ maxLength: 8 }));
  const baseCaps = Cap.PROTOCOL_41 | Cap.SECURE_CONNECTION | Cap.PLUGIN_AUTH | Cap.LONG_PASSWORD | Cap.TRANSACTIONS;
  const caps = fc.oneof(
    fc.constant(baseCaps | Cap.CONNECT_WITH_DB | Cap.DEPRECATE_EOF),
    fc.tuple(fc.constantFrom(0, Cap.CONNECT_WITH_DB, Cap.CONNECT_ATTRS, Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA, Cap.SSL, Cap.MULTI_STATEMENTS, Cap.COMPRESS), fc.constantFrom(0, Cap.PROTOCOL_41, Cap.PLUGIN_AUTH)).map(([a, b]) => (baseCaps | a) ^ b),
    fc.integer().map((n) => n >>> 0),
  );

  /** HandshakeResponse41, built by the codec then maybe cut, padded or corrupted; `token` says whether to fill in the right password token. */
  const handshakeResponse = fc.record({
    caps, user: ident, token: fc.constantFrom('right', 'wrong', 'empty', 'random'), random: fc.uint8Array({ maxLength: 40 }),
    db: fc.option(ident), plugin: fc.option(plugins), attrs: fc.option(fc.uint8Array({ maxLength: 20 })), cut: fc.integer({ min: -8, max: 40 }), charset: fc.constantFrom(45, 33, 8, 63, 0, 255),
  }).map((r) => (nonce: Buffer) => {
    const auth = r.token === 'right' ? nativePasswordToken(app.password, nonce) : r.token === 'wrong' ? nativePasswordToken('nope', nonce) : r.token === 'empty' ? Buffer.alloc(0) : Buffer.from(r.random);
    let body = buildHandshakeResponse({ capabilities: r.caps, maxPacketSize: 1 << 24, charset: r.charset, user: r.user, authResponse: auth, database: r.db, authPlugin: r.plugin, attrs: r.attrs ? Buffer.from(r.attrs) : null });
    if (r.cut > 0 && r.cut < 32) body = body.subarray(0, body.length - Math.min(body.length, r.cut)); // truncated fields
    if (r.cut < 0) body = Buffer.concat([body, Buffer.from(r.random).subarray(0, -r.cut)]); // trailing garbage
    return body;
  });

  /** SSLRequest variants (TLS is not configured here: each must be refused cleanly). */
  const sslRequest = fc.tuple(caps, fc.integer({ min: -4, max: 4 })).map(([c, d]) => (_: Buffer) => {
    const b = Buffer.alloc(Math.max(0, 32 + d));
    if (b.length >= 4) b.writeUInt32LE((c | Cap.SSL) >>> 0, 0);
    return b;
  });

  /** One handshake-phase packet, framed with maybe-wrong length and sequence id. */
  const handshakePacket: fc.Arbitrary<Handshaker> = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(handshakeResponse, lengthFor(0), seqFor(1)).map(([mk, dl, seq]) => (n: Buffer) => { const p = mk(n); const len = dl === 0 ? p.length : dl; return Buffer.concat([u24(len), Buffer.from([seq]), p]); }) },
    { weight: 1, arbitrary: fc.tuple(sslRequest, lengthFor(32), seqFor(1)).map(([mk, len, seq]) => (n: Buffer) => Buffer.concat([u24(len), Buffer.from([seq]), mk(n)])) },
    // A command where the handshake response belongs, or an auth-switch answer.
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(Com.QUERY, Com.PING, Com.QUIT, Com.STMT_PREPARE, 0xfe, 0x00), fc.uint8Array({ maxLength: 24 }), seqFor(1)).map(([c, a, seq]) => () => Buffer.concat([u24(a.length + 1), Buffer.from([seq, c]), Buffer.from(a)])) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }).map((a) => () => Buffer.from(a)) },
  );
  /** One connection: 1-5 packets concatenated, one in five truncated. */
  return fc.tuple(fc.array(handshakePacket, { minLength: 1, maxLength: 5 }), fc.nat(200));
}

const sqlText = fc.oneof(
  fc.constantFrom('SELECT 1', 'SELECT ?', 'SELECT ?, ?', 'BEGIN', 'ROLLBACK', 'COMMIT', 'SELEC', 'SELECT 1; SELECT 2', '', 'SET @a = 1', 'SELECT @a', 'USE app', 'SHOW WARNINGS', 'SELECT * FROM nowhere', 'SET autocommit = 0', 'SET autocommit = 1', 'DO 1'),
  fc.string({ maxLength: 20 }).filter((s) => !/kill|load|lock|sleep|shutdown|infile|benchmark|get_lock|outfile/i.test(s)),
);
const cmd = (c: number, body: Buffer | Uint8Array = Buffer.alloc(0)) => Buffer.concat([Buffer.from([c]), Buffer.from(body)]);
const stmtId = fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(0xffffffff, 0x7fffffff), fc.nat());
const cmdIdent = fc.oneof(fc.constantFrom('app', 'root', 'mysql', '', 'information_schema'), fc.string({ maxLength: 10 }));

/** COM_STMT_EXECUTE: id, flags, iteration count, then a null bitmap, new-params flag, types and values of any size. */
const stmtExecute = fc.record({
  id: stmtId, flags: fc.constantFrom(0, 1, 2, 4, 0xff), iter: fc.constantFrom(1, 0, 2), nullmap: fc.uint8Array({ maxLength: 3 }),
  bound: fc.constantFrom(0, 1, 2), types: fc.array(fc.tuple(fc.constantFrom(1, 2, 3, 8, 5, 0xfd, 0xfe, 0x0f, 0x06, 0xff, 0x0c), fc.constantFrom(0, 0x80)), { maxLength: 3 }), values: fc.uint8Array({ maxLength: 24 }),
}).map((r) => cmd(Com.STMT_EXECUTE, Buffer.concat([u32(r.id), Buffer.from([r.flags]), u32(r.iter), Buffer.from(r.nullmap), Buffer.from([r.bound]), ...r.types.map(([t, f]) => Buffer.from([t, f])), Buffer.from(r.values)])));

/** Command payloads of the command phase, most with wrong fields (never QUIT, KILL, CHANGE_USER or LOCAL INFILE). */
const commandPayload = fc.oneof(
  { weight: 4, arbitrary: sqlText.map((q) => cmd(Com.QUERY, Buffer.from(q))) },
  { weight: 2, arbitrary: sqlText.map((q) => cmd(Com.STMT_PREPARE, Buffer.from(q))) },
  { weight: 3, arbitrary: stmtExecute },
  { weight: 1, arbitrary: fc.tuple(stmtId, fc.integer({ min: -1, max: 3 }), fc.uint8Array({ maxLength: 8 })).map(([id, p, d]) => cmd(Com.STMT_SEND_LONG_DATA, Buffer.concat([u32(id), Buffer.from([p & 0xff, 0]), Buffer.from(d)]))) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(Com.STMT_CLOSE, Com.STMT_RESET), stmtId, fc.integer({ min: 0, max: 4 })).map(([c, id, cut]) => cmd(c, u32(id).subarray(0, 4 - (cut === 4 ? 2 : 0)))) },
  { weight: 1, arbitrary: fc.tuple(stmtId, fc.nat(10)).map(([id, rows]) => cmd(Com.STMT_FETCH, Buffer.concat([u32(id), u32(rows)]))) },
  { weight: 1, arbitrary: cmdIdent.map((d) => cmd(Com.INIT_DB, Buffer.from(d))) },
  { weight: 1, arbitrary: fc.constantFrom(cmd(Com.PING), cmd(Com.STATISTICS), cmd(Com.RESET_CONNECTION), cmd(Com.SET_OPTION, Buffer.from([0, 0])), cmd(Com.SET_OPTION, Buffer.from([1, 0])), cmd(Com.SET_OPTION, Buffer.from([7]))) },
  { weight: 1, arbitrary: fc.tuple(cmdIdent, fc.uint8Array({ maxLength: 6 })).map(([t, w]) => cmd(Com.FIELD_LIST, Buffer.concat([Buffer.from(t + '\0'), Buffer.from(w)]))) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(0x00, 0x05, 0x06, 0x08, 0x0a, 0x0d, 0x0f, 0x10, 0x20, 0x7f, 0xfe, 0xff), fc.uint8Array({ maxLength: 6 })).map(([c, a]) => cmd(c, a)) },
);

/**
 * A command-phase packet. framed: length and sequence id right (fields wrong), so the session
 * must work through the whole batch and answer the final query; otherwise lengths may be wrong,
 * sequence ids wrong, packets empty or cut, raw bytes, or a QUIT/CHANGE_USER/KILL.
 */
const commandPacketOf = (framed: boolean): fc.Arbitrary<Buffer> =>
  framed
    ? commandPayload.map((p) => Buffer.concat([u24(p.length), Buffer.from([0]), p]))
    : fc.oneof(
        { weight: 4, arbitrary: commandPayload.chain((p) => packet(p, 0)) },
        { weight: 1, arbitrary: fc.constant(Buffer.from([0, 0, 0, 0])) }, // empty command
        { weight: 1, arbitrary: fc.tuple(fc.constantFrom(Com.QUIT, Com.CHANGE_USER, Com.PROCESS_KILL), fc.uint8Array({ maxLength: 12 })).chain(([c, a]) => packet(cmd(c, c === Com.PROCESS_KILL ? u32(0x7ffffff0) : a), 0)) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)) },
        { weight: 1, arbitrary: commandPayload.chain((p) => packet(p, 0)).map((b) => b.subarray(0, Math.max(1, b.length - 2))) },
      );

/** Three in four sessions get `packets` well-framed commands, the rest 1-20 broken ones. */
const commandSession = (packets: number) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.array(commandPacketOf(true), { minLength: packets, maxLength: packets }).map((p) => ({ kind: 'framed' as const, frames: p })) },
    { weight: 1, arbitrary: fc.array(commandPacketOf(false), { minLength: 1, maxLength: 20 }).map((p) => ({ kind: 'broken' as const, frames: p })) },
  );

/** Split packets (0xffffff bytes, then a continuation with a wrong sequence id or a short one). */
function splitBatches(): { kind: 'split'; frames: Buffer[] }[] {
  const split = (seq2: number, tailLen: number): Buffer[] => {
    const head = Buffer.alloc(4 + 0xffffff, 0x20);
    head.writeUIntLE(0xffffff, 0, 3);
    head[3] = 0;
    head[4] = Com.QUERY;
    return [head, Buffer.concat([u24(tailLen), Buffer.from([seq2]), Buffer.alloc(Math.min(tailLen, 4), 0x20)])];
  };
  return [split(7, 1), split(0, 1), split(1, 3), split(2, 0)].map((frames) => ({ kind: 'split', frames }));
}

// ---- drivers --------------------------------------------------------------------------

export interface MysqlHandshakeOptions {
  port: number;
  app: MysqlLoginInfo;
  inputs: number;
  seed?: number;
  /** Connections in parallel (default 32). */
  width?: number;
}

export interface MysqlHandshakeResult extends PhaseResult {
  /** Connections whose last packet from the proxy was an ERR. */
  err: number;
  /** Connections answered with something other than OK, auth switch, more data or an ERR. */
  badAnswer: string[];
}

/** Waits for the greeting, sends what `make` builds from its nonce and half-closes at once. */
async function handshakeOnce(port: number, make: Handshaker): Promise<{ outcome: Outcome; packets: Buffer[]; sent: Buffer }> {
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  const nonce = await new Promise<Buffer | null>((resolve) => {
    const reader = new MysqlPacketReader({ maxMessageSize: 1 << 24 });
    s.on('data', (d: Buffer) => {
      try {
        const [p] = reader.push(d);
        if (p) { s.removeAllListeners('data'); resolve(parseHandshakeV10(p.payload).nonce); }
      } catch { resolve(null); }
    });
    s.once('close', () => resolve(null));
  });
  if (!nonce) { s.destroy(); return { outcome: 'closed', packets: [], sent: Buffer.alloc(0) }; }
  const sent = make(nonce);
  const { outcome, data } = await drive(s, sent, { quietMs: 0, closeMs: 3000, keepAll: true });
  s.destroy();
  let packets: Buffer[] = [];
  try { packets = new MysqlPacketReader({ maxMessageSize: 1 << 24 }).push(data).map((p) => Buffer.from(p.payload)); } catch { /* a cut packet: no answer to check */ }
  return { outcome, packets, sent };
}

/** Handshake phase: HandshakeResponse41 with wrong fields and lengths, SSLRequests, truncated and concatenated packets, random bytes. */
export async function fuzzMysqlHandshake(o: MysqlHandshakeOptions): Promise<MysqlHandshakeResult> {
  const r: MysqlHandshakeResult = { ...newPhase('mysql handshake'), err: 0, badAnswer: [] };
  return runPhase(r, sampleUntil(handshakeArbs(o.app), o.seed ?? 42, o.inputs, ([m]) => m.length), o.width ?? 32, async ([makers, cut]) => {
    r.inputs += makers.length;
    r.conns++;
    const { outcome, packets, sent } = await handshakeOnce(o.port, (nonce) => {
      const all = Buffer.concat(makers.map((m) => m(nonce)));
      return cut % 5 === 0 ? all.subarray(0, Math.max(1, all.length - 1 - (cut % 7))) : all; // truncated
    });
    tally(r, outcome, () => sent);
    // Whatever came after the greeting: an OK (a right token) then maybe an answer, or an ERR last.
    const last = packets[packets.length - 1];
    if (last?.[0] === 0xff) r.err++;
    else if (last && ![0x00, 0xfe, 0x01].includes(packets[0]![0]!)) r.badAnswer.push(packets.map((p) => p.toString('hex').slice(0, 40)).join(' '));
  });
}

export interface MysqlCommandOptions {
  port: number;
  app: MysqlLoginInfo;
  database?: string;
  inputs: number;
  /** Commands per well-framed session (default 150). */
  packets?: number;
  seed?: number;
  /** Sessions in parallel (default 12). */
  width?: number;
  /** Half-close after this long without a byte from the proxy (default 1000 ms). */
  quietMs?: number;
  /** Also send the four 16MB split packets with wrong continuations (default true). */
  splits?: boolean;
  debug?: boolean;
}

export interface MysqlCommandResult extends PhaseResult {
  framedSessions: number;
  framedAnswered: number;
  splitConns: number;
}

/** Command phase: batches of malformed commands on logged-in sessions, then a marker query. */
export async function fuzzMysqlCommands(o: MysqlCommandOptions): Promise<MysqlCommandResult> {
  const r: MysqlCommandResult = { ...newPhase('mysql commands'), framedSessions: 0, framedAnswered: 0, splitConns: 0 };
  const batches = function* (): Generator<{ kind: 'framed' | 'broken' | 'split'; frames: Buffer[] }> {
    if (o.splits !== false) yield* splitBatches();
    yield* sampleUntil(commandSession(o.packets ?? 150), o.seed ?? 7, o.inputs - (o.splits !== false ? 8 : 0), (b) => b.frames.length);
  };
  return runPhase(r, batches(), o.width ?? 12, async ({ kind, frames }) => {
    const c = await connectMysql({ host: '127.0.0.1', port: o.port, user: o.app.user, password: o.app.password, database: o.database ?? 'app' });
    const s = c.socket;
    s.removeAllListeners('data');
    const marker = `fuzz_done_${r.conns}`;
    const q = cmd(Com.QUERY, Buffer.from(`SELECT '${marker}'`));
    r.inputs += frames.length;
    r.conns++;
    if (kind === 'split') r.splitConns++;
    if (kind === 'framed') r.framedSessions++;
    // A wrong length can leave the proxy waiting for bytes that never come: correct until the
    // client stops sending; after the half-close it must close.
    const { outcome, data } = await drive(s, Buffer.concat([...frames, u24(q.length), Buffer.from([0]), q]), { quietMs: o.quietMs ?? 1000, closeMs: 3000, marker });
    tally(r, outcome, () => Buffer.concat(frames));
    if (outcome === 'answered' && kind === 'framed') r.framedAnswered++;
    if (o.debug && kind === 'framed' && outcome !== 'answered') console.log(`framed batch ${outcome}; last bytes:`, JSON.stringify(data.toString('latin1').slice(-120)), 'cmds:', frames.map((f) => f.subarray(4, 6).toString('hex')).join(','));
    s.destroy();
  });
}

/** Counts the app user's connections a MariaDB node of `info` shows (the asking one excluded). */
export function mysqlBackendCount(info: MariaClusterInfo): (node: string) => Promise<number> {
  const cluster = MariaCluster.attach(info);
  return async (node) => Number((await cluster.query<{ n: number | string }>(node, 'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()', [info.users.app.user]))[0]!.n);
}
