import { ErrorCodes, SwitchyardError } from '../../errors.js';
import type { BackendStatement } from '../../backend/mysql/conn.js';
import type { Classification } from '../../sql/index.js';

/*
 * Client prepared statements (COM_STMT_*) under transaction pooling. The
 * client sees one statement id per COM_STMT_PREPARE; each backend connection
 * that executes it has its own server id, prepared lazily the first time that
 * connection runs it. These helpers are pure: they rewrite command payloads.
 */

/** A statement as the client prepared it. */
export interface ClientStatement {
  id: number;
  sql: string;
  classification: Classification;
  params: number;
  columns: number;
  /** The parameter types of the last execute that sent them (a later execute may omit them). */
  types: Buffer | null;
  /** COM_STMT_SEND_LONG_DATA payloads since the last execute, replayed on the executing connection. */
  longData: Buffer[];
}

/** Cache key of a server statement: the text only means the same thing in the same database. */
export function statementKey(db: string | null, sql: string): string {
  return `${db ?? ''}\u0000${sql}`;
}

/** The COM_STMT_PREPARE_OK fields: server id, columns, params. */
export function parsePrepareOk(payload: Buffer): { id: number; columns: number; params: number } {
  if (payload.length < 9 || payload[0] !== 0) throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'malformed COM_STMT_PREPARE answer');
  return { id: payload.readUInt32LE(1), columns: payload.readUInt16LE(5), params: payload.readUInt16LE(7) };
}

/** A copy of a packet (raw bytes with its 4-byte header, not split) with the statement id at payload offset 1 replaced. */
export function withStatementId(raw: Buffer, id: number): Buffer {
  const copy = Buffer.from(raw);
  copy.writeUInt32LE(id >>> 0, 5);
  return copy;
}

/** The statement id a COM_STMT_* command names. */
export function commandStatementId(payload: Buffer): number {
  if (payload.length < 5) throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'statement command without a statement id');
  return payload.readUInt32LE(1);
}

/**
 * COM_STMT_EXECUTE for a backend statement: the server id in place of the
 * client's, and the parameter types put back when the client omitted them
 * (new-params-bound flag 0).
 * Records the types when the client sends them. Layout: 0x17, id u32, flags u8,
 * iterations u32, NULL bitmap ((params+7)/8 bytes), new-params-bound u8, types, values.
 */
export function rewriteExecute(payload: Buffer, stmt: ClientStatement, backend: BackendStatement): Buffer {
  let out = Buffer.from(payload);
  out.writeUInt32LE(backend.id >>> 0, 1);
  if (stmt.params > 0) {
    const flagPos = 10 + ((stmt.params + 7) >> 3);
    if (flagPos >= out.length) throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'COM_STMT_EXECUTE truncated');
    if (out[flagPos] === 1) {
      const end = flagPos + 1 + 2 * stmt.params;
      if (end > out.length) throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'COM_STMT_EXECUTE truncated');
      // Clients send the same types on every execute: copied only when they change.
      const types = out.subarray(flagPos + 1, end);
      if (stmt.types === null || !stmt.types.equals(types)) stmt.types = Buffer.from(types);
    } else if (stmt.types) {
      // Always put them back: a server statement is shared by every session that prepared the
      // same text on this connection, so the types it remembers may be another session's.
      out = Buffer.concat([out.subarray(0, flagPos), Buffer.from([1]), stmt.types, out.subarray(flagPos + 1)]);
    }
  }
  return out;
}
