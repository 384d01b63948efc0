import { msg, parseBindHeader, parseDescribeOrClose, parseParse, parseQuery, rewriteBindStatement, rewriteDescribeOrCloseName, rewriteParseName, type PgFrame } from '../../protocol/pg/index.js';
import type { PgBackendConn } from '../../backend/pg/conn.js';
import type { Classification, Classifier } from '../../sql/index.js';
import type { ResponseFilter } from './response-filter.js';
import { connState, serverStatementName, touchPrepared, type ClientStatement, type ConnState } from './session-state.js';

// Frontend message types.
const Q = 0x51;
const P = 0x50;
const B = 0x42;
const D = 0x44;
const C = 0x43;
const E = 0x45;
const S = 0x53;
const H = 0x48;
const F = 0x46;

/** What the translator needs of a session. */
export interface StatementOwner {
  readonly statements: Map<string, ClientStatement>;
  unnamedClassification: Classification | null;
}

const UNSURE: Classification = { class: 'write', reason: 'unknown', statements: 1, hints: {} };

/**
 * The routing class of a batch: a write if any of its statements writes (or
 * is unknown), so a pipeline of reads with one write goes to the primary.
 * Hints, transaction control and the first statement's reason come from the
 * first statement; session effects from all of them, in order.
 * `incomplete` means more of the batch is still to come: unsure.
 * `portalsOfBatch`: an Execute without a Bind runs a portal bound earlier in this batch.
 */
export function classifySegment(owner: StatementOwner, frames: readonly PgFrame[], classifier: Classifier, incomplete: boolean, portalsOfBatch = false): Classification {
  // Named statements parsed in this batch; made only when one is (a Map per batch otherwise).
  let local: Map<string, Classification> | null = null;
  let unnamed = owner.unnamedClassification;
  let merged: Classification | null = null;
  // The first statement's result is the classifier's shared (frozen) object: it is copied
  // only when a second statement has to be merged into it. Copying it for every batch was
  // ~700 instructions of pgbench -S's transaction (a spread, property by property).
  let mergedIsCopy = false;
  let anySql = false;
  const add = (c: Classification) => {
    anySql = true;
    if (!merged) {
      merged = c;
      return;
    }
    if (!mergedIsCopy) {
      merged = { ...merged, session: merged.session ? [...merged.session] : undefined };
      mergedIsCopy = true;
    }
    if (c.class !== 'read' && merged.class === 'read') merged = { ...merged, class: c.class, reason: c.reason };
    if (!merged.transaction && c.transaction) merged.transaction = c.transaction;
    if (c.session) merged.session = [...(merged.session ?? []), ...c.session];
  };
  for (const f of frames) {
    switch (f.type) {
      case Q:
        add(classifier.classify(parseQuery(f.payload)));
        break;
      case F:
        add(UNSURE);
        break;
      case P: {
        const { name, query } = parseParse(f.payload);
        const c = classifier.classify(query);
        if (name === '') unnamed = c;
        else (local ??= new Map()).set(name, c);
        add(c);
        break;
      }
      case B: {
        const { statement } = parseBindHeader(f.payload);
        add((statement === '' ? unnamed : (local?.get(statement) ?? owner.statements.get(statement)?.classification)) ?? UNSURE);
        break;
      }
      case E:
        // Executing a portal bound in an earlier batch (inside a transaction): unsure. With
        // `portalsOfBatch` (a segment after a Flush, outside a transaction block) the portal can
        // only have been bound earlier in the same batch, whose class already counted.
        if (!portalsOfBatch && !frames.some((x) => x.type === B)) add(UNSURE);
        break;
      default:
        break; // Describe, Close, Sync, Flush carry no SQL of their own
    }
  }
  if (incomplete) add(UNSURE);
  // Describe/Close/Sync only: any node can answer (statements are prepared where needed).
  if (!anySql) return { class: 'read', reason: 'empty', statements: 0, hints: {} };
  return merged!;
}

/**
 * Sends one borrowed connection the messages of a session's batches,
 * translating what refers to the session's named statements:
 *   - Parse of a named statement: prepared under its server name, or answered
 *     with a made-up ParseComplete when the connection has it already;
 *   - Bind/Describe of a named statement: prepared first if the connection
 *     lacks it (its answer swallowed), then sent with the server name;
 *   - Close of a named statement: the client forgets it; the connection keeps
 *     it in its cache (CloseComplete made up).
 * Every sent message registers the answer it expects with the filter.
 */
export class BatchTranslator {
  private readonly state: ConnState;

  constructor(
    private readonly owner: StatementOwner,
    private readonly conn: PgBackendConn,
    private readonly filter: ResponseFilter,
    private readonly cacheSize: number,
    private readonly classifier: Classifier,
  ) {
    this.state = connState(conn);
  }

  send(frame: PgFrame): void {
    switch (frame.type) {
      case Q:
        this.conn.write(frame.raw);
        this.filter.expect('query');
        this.noteServerSideDeallocation(frame);
        return;
      case F:
        this.conn.write(frame.raw);
        this.filter.expect('func');
        return;
      case S:
        this.conn.write(frame.raw);
        this.filter.expect('sync');
        return;
      case H:
        this.conn.write(frame.raw);
        return;
      case E:
        this.conn.write(frame.raw);
        this.filter.expect('execute');
        return;
      case P:
        return this.parse(frame);
      case B:
        return this.bind(frame);
      case D:
      case C:
        return this.describeOrClose(frame);
      default:
        // COPY messages are written by the session directly; nothing else reaches here.
        this.conn.write(frame.raw);
    }
  }

  private parse(frame: PgFrame): void {
    const { name, query } = parseParse(frame.payload);
    const classification = this.classifier.classify(query);
    if (name === '') {
      this.owner.unnamedClassification = classification;
      this.conn.write(frame.raw);
      this.filter.expect('parse');
      return;
    }
    const nameEnd = frame.payload.indexOf(0);
    // A private copy: the client's chunk must not be retained for the session's lifetime.
    const stmt: ClientStatement = { serverName: serverStatementName(frame.payload, nameEnd), parse: Buffer.from(frame.raw), classification };
    this.owner.statements.set(name, stmt);
    this.prepare(stmt, name);
  }

  private bind(frame: PgFrame): void {
    const { statement } = parseBindHeader(frame.payload);
    const stmt = statement === '' ? undefined : this.owner.statements.get(statement);
    if (!stmt) {
      // Unnamed, or unknown to the session: the server answers (or complains) as it would.
      this.conn.write(frame.raw);
    } else {
      this.prepare(stmt, null);
      this.conn.write(rewriteBindStatement(frame.raw, stmt.serverName));
    }
    this.filter.expect('bind');
  }

  private describeOrClose(frame: PgFrame): void {
    const { kind, name } = parseDescribeOrClose(frame.payload);
    const isClose = frame.type === C;
    if (kind === 'P' || name === '') {
      this.conn.write(frame.raw);
      this.filter.expect(isClose ? 'close' : 'describe');
      return;
    }
    if (isClose) {
      // Closing a statement that does not exist is not an error in PostgreSQL either.
      this.owner.statements.delete(name);
      this.filter.synthesize('close', msg.closeComplete());
      return;
    }
    const stmt = this.owner.statements.get(name);
    if (!stmt) {
      this.conn.write(frame.raw);
    } else {
      this.prepare(stmt, null);
      this.conn.write(rewriteDescribeOrCloseName(frame.raw, stmt.serverName));
    }
    this.filter.expect('describe');
  }

  /**
   * Makes sure the connection has the statement. `clientName` is set when the
   * client itself sent this Parse (its ParseComplete is then the client's).
   */
  private prepare(stmt: ClientStatement, clientName: string | null): void {
    const visible = clientName !== null;
    if (this.state.prepared.has(stmt.serverName)) {
      touchPrepared(this.state, stmt.serverName, this.cacheSize);
      if (visible) this.filter.synthesize('parse', msg.parseComplete());
      return;
    }
    // 1. Make room: the least recently used statements are closed on the server.
    for (const old of touchPrepared(this.state, stmt.serverName, this.cacheSize)) {
      this.conn.write(msg.close('S', old));
      this.filter.expect('close', true);
    }
    // 2. Prepare under the server name; a failure forgets it again.
    this.conn.write(rewriteParseName(stmt.parse, stmt.serverName));
    this.filter.expect('parse', !visible, () => {
      this.state.prepared.delete(stmt.serverName);
      if (clientName !== null && this.owner.statements.get(clientName) === stmt) this.owner.statements.delete(clientName);
    });
  }

  /** `DEALLOCATE ALL` and `DISCARD ALL` remove every prepared statement: the client's and the proxy's. */
  private noteServerSideDeallocation(frame: PgFrame): void {
    // Classifying every Query a second time (text decoded, shape built and hashed again) was
    // ~6% of pgbench -S's instructions; only a text that spells one of the two keywords can
    // be either statement (keywords are plain ASCII words, in any case).
    if (!containsWordCaseless(frame.payload, DEALLOCATE) && !containsWordCaseless(frame.payload, DISCARD)) return;
    const c = this.classifier.classify(parseQuery(frame.payload));
    if (c.session?.some((e) => (e.kind === 'sql_deallocate' && e.name === 'all') || (e.kind === 'discard' && /^all$/i.test(e.what)))) {
      this.state.prepared.clear();
      this.owner.statements.clear();
    }
  }
}

const DEALLOCATE = Buffer.from('deallocate');
const DISCARD = Buffer.from('discard');

/** Whether `word` (lower-case ASCII) occurs in `bytes` in any letter case. */
function containsWordCaseless(bytes: Buffer, word: Buffer): boolean {
  const first = word[0]!;
  const last = bytes.length - word.length;
  outer: for (let i = 0; i <= last; i++) {
    if ((bytes[i]! | 0x20) !== first) continue;
    for (let j = 1; j < word.length; j++) if ((bytes[i + j]! | 0x20) !== word[j]) continue outer;
    return true;
  }
  return false;
}
