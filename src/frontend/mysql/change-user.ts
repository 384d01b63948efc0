import { randomBytes } from 'node:crypto';
import { ErrorCodes, SwitchyardError } from '../../errors.js';
import {
  Cap, PayloadReader, buildAuthSwitch, buildOk, cachingSha2Token, nativePasswordToken, verifyToken, Status, type MysqlPacket,
} from '../../protocol/mysql/index.js';
import type { MysqlSession } from './session.js';
import { checkBackend } from './backend-check.js';

/**
 * COM_CHANGE_USER: 1. parse user, token, database, character set, plugin;
 * 2. a plugin other than mysql_native_password / caching_sha2_password is
 * switched to native password (AuthSwitchRequest with the login's nonce);
 * 3. the token is checked against the login's nonce (same 1045 for unknown
 * user and wrong password; the connection is then closed); 4. the session
 * starts afresh as that user (as after COM_RESET_CONNECTION), its database
 * checked on a node; 5. OK.
 */
export async function changeUser(s: MysqlSession, p: MysqlPacket, seq: number): Promise<void> {
  const caps = s.id.clientCaps;
  const r = new PayloadReader(p.payload, 1);
  const user = r.nulString();
  let token: Buffer = caps & Cap.SECURE_CONNECTION ? r.bytes(r.u8()) : r.nulBytes();
  const database = r.remaining > 0 ? r.nulString() : '';
  const charset = r.remaining >= 2 ? r.u16() & 0xff : s.id.key.charset;
  let plugin = caps & Cap.PLUGIN_AUTH && r.remaining > 0 ? r.nulString() : 'mysql_native_password';
  let next = seq;
  if (plugin !== 'mysql_native_password' && plugin !== 'caching_sha2_password') {
    s.reply(buildAuthSwitch('mysql_native_password', s.id.nonce), next);
    const answer = await s.nextClientPacket();
    token = answer.payload;
    next = (answer.lastSeq + 1) & 0xff;
    plugin = 'mysql_native_password';
  }
  const known = s.runtime.password(user);
  const password = known ?? randomBytes(16).toString('hex');
  const expected = plugin === 'caching_sha2_password' ? cachingSha2Token(password, s.id.nonce) : nativePasswordToken(password, s.id.nonce);
  if (known === undefined || !verifyToken(expected, token)) {
    s.fatal(new SwitchyardError(ErrorCodes.AUTH_FAILED, `Access denied for user '${user}'@'${s.id.address}' (using password: ${token.length > 0 ? 'YES' : 'NO'})`), next);
    return;
  }
  if (plugin === 'caching_sha2_password') {
    s.reply(Buffer.from([0x01, 0x03]), next);
    next = (next + 1) & 0xff;
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
