import tls from 'node:tls';
import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { Cap, PayloadReader, buildOk, Status, type MysqlPacket } from '../../protocol/mysql/index.js';
import { ServerAuth } from '../../protocol/mysql/server-auth.js';
import type { MysqlSession } from './session.js';
import { checkBackend } from './backend-check.js';
import { serverRsaKeys } from './full-auth.js';

/**
 * COM_CHANGE_USER: 1. parse user, token, database, character set, plugin;
 * 2. the same exchange as a login (ServerAuth, with the login's nonce):
 * mysql_native_password, caching_sha2_password (fast path or full auth),
 * sha256_password, other plugins switched to native password; same 1045 for
 * unknown user and wrong password, and the connection is then closed; 3. the
 * session starts afresh as that user (as after COM_RESET_CONNECTION), its
 * database checked on a node; 4. OK.
 */
export async function changeUser(s: MysqlSession, p: MysqlPacket, seq: number): Promise<void> {
  const caps = s.id.clientCaps;
  const r = new PayloadReader(p.payload, 1);
  const user = r.nulString();
  const token: Buffer = caps & Cap.SECURE_CONNECTION ? r.bytes(r.u8()) : r.nulBytes();
  const database = r.remaining > 0 ? r.nulString() : '';
  const charset = r.remaining >= 2 ? r.u16() & 0xff : s.id.key.charset;
  const plugin = caps & Cap.PLUGIN_AUTH && r.remaining > 0 ? r.nulString() : 'mysql_native_password';
  let next = seq;
  const auth = new ServerAuth({ password: s.runtime.password(user), nonce: s.id.nonce, secure: s.socket instanceof tls.TLSSocket });
  let step = auth.start(plugin, token);
  for (;;) {
    for (const payload of step.send) {
      s.reply(payload, next);
      next = (next + 1) & 0xff;
    }
    if (step.then === 'wait') {
      const answer = await s.nextClientPacket();
      next = (answer.lastSeq + 1) & 0xff;
      step = auth.next(answer.payload);
    } else if (step.then === 'keys') {
      step = auth.withKeys(await serverRsaKeys());
    } else break;
  }
  if (step.then === 'fail') {
    const err = step.reason === 'unexpected-packet'
      ? new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'Bad handshake')
      : new SwitchyardError(ErrorCodes.AUTH_FAILED, `Access denied for user '${user}'@'${s.id.address}' (using password: ${step.usedPassword ? 'YES' : 'NO'})`);
    s.fatal(err, next);
    return;
  }
  s.resetSession();
  s.id.user = user;
  s.id.key = { ...s.id.key, user, charset };
  s.state.db = database === '' ? null : database;
  try {
    await checkBackend(s.runtime, s.id.key, s.state.db);
  } catch (e) {
    s.fatal(e, next);
    return;
  }
  s.reply(buildOk({ status: Status.AUTOCOMMIT }), next);
}
