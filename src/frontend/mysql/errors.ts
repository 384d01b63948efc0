import { ErrorCodes, isSwitchyardError, mysqlErrno } from '../../errors.js';
import { buildErr } from '../../protocol/mysql/index.js';

/** An ERR packet a backend sent that the client must see as is (unknown database, access denied, ...). */
export class MysqlServerError extends Error {
  constructor(readonly payload: Buffer) {
    super(payload.length > 9 ? payload.toString('utf8', 9) : 'server error');
    this.name = 'MysqlServerError';
  }
}

/** The ERR payload a client gets for an error: the server's own, or the errno of a switchyard code (docs/errors.md). */
export function errPayload(err: unknown): Buffer {
  if (err instanceof MysqlServerError) return err.payload;
  const code = isSwitchyardError(err) ? err.code : ErrorCodes.INTERNAL;
  const { errno, sqlState } = mysqlErrno[code];
  const message = err instanceof Error ? err.message : String(err);
  return buildErr({ errno, sqlState, message });
}
