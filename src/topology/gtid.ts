/**
 * GTID positions of MariaDB (and MySQL) replication, as pure values: parsing,
 * comparison, transaction distance, and the mapping onto the single 64-bit
 * position the protocol-independent topology code (decide.ts, the router,
 * src/frontend/causal.ts) compares. No I/O, no clock.
 *
 * A position is, per replication stream, the sequence number of the last
 * transaction applied. MariaDB: the stream is a GTID domain, and a position
 * text like `0-1-1043,1-2-7` names per domain `domain-server-seq` (the
 * server id is only who wrote it: in a domain, sequence numbers grow whatever
 * the server, and gtid_strict_mode enforces it). MySQL: the stream is a source
 * UUID, and `uuid:1-1043` gives the transactions applied; we keep the end of
 * the contiguous run that starts at 1 (a transaction after a gap does not
 * count, so a replica is never thought to have more than it has).
 */
import { ErrorCodes, SwitchyardError } from '../errors.js';

/** Stream (MariaDB domain id as decimal text, or MySQL source UUID in lower case) -> last sequence number applied. */
export type GtidPos = ReadonlyMap<string, bigint>;

const MAX_SEQ = (1n << 64n) - 1n;
const MARIA_GTID = /^(\d{1,10})-(\d{1,10})-(\d{1,20})$/;

function bad(text: string, why: string): SwitchyardError {
  return new SwitchyardError(ErrorCodes.INTERNAL, `invalid GTID position "${text.length > 80 ? `${text.slice(0, 80)}...` : text}": ${why}`);
}

/**
 * MariaDB `@@gtid_binlog_pos` / `@@gtid_slave_pos` / `@@gtid_current_pos` /
 * `@@last_gtid`: comma-separated `domain-server-seq`, at most one per domain,
 * whitespace (MariaDB prints newlines in SHOW SLAVE STATUS) ignored; '' is the
 * empty position.
 */
export function parseMariaGtidPos(text: string): GtidPos {
  const out = new Map<string, bigint>();
  const trimmed = text.trim();
  if (trimmed === '') return out;
  for (const part of trimmed.split(',')) {
    const m = MARIA_GTID.exec(part.trim());
    if (!m) throw bad(text, `"${part.trim()}" is not domain-server-seq`);
    const domain = BigInt(m[1]!);
    const server = BigInt(m[2]!);
    const seq = BigInt(m[3]!);
    if (domain > 0xffffffffn || server > 0xffffffffn) throw bad(text, 'domain and server id are 32-bit');
    if (seq > MAX_SEQ) throw bad(text, 'sequence number is 64-bit');
    const key = domain.toString();
    if (out.has(key)) throw bad(text, `domain ${key} appears twice`);
    out.set(key, seq);
  }
  return out;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * MySQL `@@gtid_executed`: comma-separated `uuid:interval[:interval...]`
 * (intervals `n` or `a-b`, tags `uuid:tag:...` of 8.3+ are refused). Per UUID,
 * the end of the run that starts at 1; '' is the empty position.
 */
export function parseMysqlGtidSet(text: string): GtidPos {
  return parseMysqlSet(text, 'applied');
}

/**
 * A MySQL GTID set that must have been applied (e.g. a commit's `uuid:N` from
 * session tracking): per UUID the highest transaction it names. Compared with
 * a replica's parseMysqlGtidSet position, this asks for the whole run 1..N,
 * which is more than needed only when the replica has gaps: never less.
 */
export function parseMysqlGtidRequirement(text: string): GtidPos {
  return parseMysqlSet(text, 'required');
}

function parseMysqlSet(text: string, as: 'applied' | 'required'): GtidPos {
  const out = new Map<string, bigint>();
  const trimmed = text.trim();
  if (trimmed === '') return out;
  for (const part of trimmed.split(',')) {
    const [uuidRaw, ...ivs] = part.trim().split(':');
    const uuid = (uuidRaw ?? '').toLowerCase();
    if (!UUID.test(uuid)) throw bad(text, `"${uuidRaw}" is not a UUID`);
    if (ivs.length === 0) throw bad(text, `${uuid} has no interval`);
    const ranges: [bigint, bigint][] = [];
    for (const iv of ivs) {
      const m = /^(\d{1,20})(?:-(\d{1,20}))?$/.exec(iv);
      if (!m) throw bad(text, `"${iv}" is not an interval (tagged GTIDs are not supported)`);
      const a = BigInt(m[1]!);
      const b = m[2] === undefined ? a : BigInt(m[2]);
      if (a < 1n || b < a || b > MAX_SEQ) throw bad(text, `"${iv}" is not an interval`);
      ranges.push([a, b]);
    }
    let end = out.get(uuid) ?? 0n;
    if (as === 'required') {
      for (const [, b] of ranges) if (b > end) end = b;
      out.set(uuid, end);
      continue;
    }
    ranges.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    for (const [a, b] of ranges) {
      if (a > end + 1n) break;
      if (b > end) end = b;
    }
    out.set(uuid, end);
  }
  return out;
}

/** `domain-0-seq` per domain (MariaDB; the server id is not kept) or `uuid:1-seq` (MySQL), sorted: for logs and /status. */
export function formatGtidPos(pos: GtidPos): string {
  // A UUID with nothing applied has no interval to print, and leaving it out means the same.
  return [...pos.entries()]
    .filter(([k, seq]) => !(seq === 0n && UUID.test(k)))
    .sort(([a], [b]) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, seq]) => (UUID.test(k) ? `${k}:1-${seq}` : `${k}-0-${seq}`))
    .join(',');
}

/** `replayed` has applied everything `required` names: per stream, its sequence number is at least as high. */
export function gtidCovers(replayed: GtidPos, required: GtidPos): boolean {
  for (const [k, seq] of required) {
    if (seq === 0n) continue;
    const have = replayed.get(k);
    if (have === undefined || have < seq) return false;
  }
  return true;
}

/** Transactions `ahead` has applied that `behind` has not: the sum over streams of the sequence number gap. */
export function gtidDistance(ahead: GtidPos, behind: GtidPos): bigint {
  let sum = 0n;
  for (const [k, seq] of ahead) {
    const have = behind.get(k) ?? 0n;
    if (seq > have) sum += seq - have;
  }
  return sum;
}

/** Per stream, the higher of the two. */
export function gtidMax(a: GtidPos, b: GtidPos): GtidPos {
  const out = new Map(a);
  for (const [k, seq] of b) if ((out.get(k) ?? -1n) < seq) out.set(k, seq);
  return out;
}

/**
 * The single position of a primary's GTID state: the sum of its sequence
 * numbers. Along one primary's history it only grows, and it grows by exactly
 * the number of transactions committed, so differences are transaction counts.
 */
export function gtidTotal(pos: GtidPos): bigint {
  let sum = 0n;
  for (const seq of pos.values()) sum += seq;
  return sum;
}

export interface GtidSample {
  at: number;
  /** gtidTotal(gtid): the scalar decide.ts orders samples by. */
  position: bigint;
  gtid: GtidPos;
}

/**
 * A replica's single position, for the scalar comparisons of decide.ts, the
 * router and the causal tracker: the position of the newest sample of the
 * primary's history that the replica has fully applied, or 0 when it has
 * applied none (it is older than the whole history).
 *
 * Why not the sum of the replica's own sequence numbers: with several domains
 * a sum can reach a primary sample's sum while one domain is still behind it.
 * This watermark is exact for read-your-writes: `watermark >= p` for a sample
 * p of the history means the replica has applied everything p had, because
 * the history is a chain (each sample contains the earlier ones).
 */
export function gtidWatermark(history: readonly GtidSample[], replayed: GtidPos): bigint {
  // Newest first: a replica is usually close to the head.
  for (let i = history.length - 1; i >= 0; i--) {
    const s = history[i]!;
    if (gtidCovers(replayed, s.gtid)) return s.position;
  }
  return 0n;
}
