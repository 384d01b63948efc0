import { createHmac, randomBytes } from 'node:crypto';
import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { ScramServer, msg, parsePasswordMessage, parseSASLInitialResponse, md5Password } from '../../protocol/pg/index.js';

/**
 * Stands in for the password of an unknown user (md5, and the SCRAM exchange's
 * password argument; SCRAM verifies against fakeKeysFor's keys instead).
 */
const UNKNOWN_USER_PASSWORD = randomBytes(24).toString('base64');

/**
 * Keys the fake salt of unknown users. A known user's salt is random per
 * process and stable across its logins; an unknown user's must be too, and must
 * differ between user names: one shared salt for every unknown name would tell
 * an attacker which names exist. HMAC(secret, name) gives both, with no state.
 */
const UNKNOWN_USER_SALT_KEY = randomBytes(32);

/** The SCRAM salt shown for an unknown user: deterministic per name within this process. */
export function fakeSaltFor(user: string): Buffer {
  return createHmac('sha256', UNKNOWN_USER_SALT_KEY).update(user).digest().subarray(0, 16);
}

/**
 * An unknown user's stand-in SCRAM keys: two HMACs, about the cost of a known
 * user's cached keys (a map lookup). Deriving them from a password would cost a
 * PBKDF2 (0.9 ms of blocked event loop) per new name, make a made-up name slower
 * to refuse than a wrong password (a timing oracle for which names exist) and
 * let a flood of names evict the real users' cached keys.
 */
function fakeKeysFor(user: string): { storedKey: Buffer; serverKey: Buffer } {
  const mac = (label: string) => createHmac('sha256', UNKNOWN_USER_SALT_KEY).update(label).update(user).digest();
  return { storedKey: mac('stored:'), serverKey: mac('server:') };
}

export type ClientAuthMethod = 'scram-sha-256' | 'md5';

/**
 * Client authentication as a small state machine fed with password-message
 * payloads ('p'). An unknown user goes through exactly the same exchange with a
 * random password, so the answer (28P01) and the work done are the same as for
 * a wrong password.
 */
export class ClientAuthenticator {
  private step: 'initial' | 'scram-final' | 'md5' | 'done' = 'initial';
  private scram: ScramServer | null = null;
  private readonly salt = randomBytes(4);
  private readonly known: boolean;
  private readonly password: string;

  constructor(
    private readonly method: ClientAuthMethod,
    private readonly user: string,
    password: string | undefined,
  ) {
    this.known = password !== undefined;
    this.password = password ?? UNKNOWN_USER_PASSWORD;
  }

  /** The first authentication request to send. */
  begin(): Buffer {
    if (this.method === 'md5') {
      this.step = 'md5';
      return msg.authenticationMD5Password(this.salt);
    }
    return msg.authenticationSASL(['SCRAM-SHA-256']);
  }

  /**
   * Handles one 'p' payload. Returns the next message to send, or 'ok' when the
   * client is authenticated (the caller sends AuthenticationOk and the rest).
   * Throws AUTH_FAILED (same message for every failure) or PROTOCOL_VIOLATION.
   */
  next(payload: Buffer): { send: Buffer; done: boolean } {
    switch (this.step) {
      case 'md5': {
        const got = parsePasswordMessage(payload);
        const want = md5Password(this.user, this.password, this.salt);
        this.step = 'done';
        if (!timingSafeEqualStr(got, want) || !this.known) throw this.failed();
        return { send: msg.authenticationOk(), done: true };
      }
      case 'initial': {
        const { mechanism, data } = parseSASLInitialResponse(payload);
        if (mechanism !== 'SCRAM-SHA-256') {
          throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `unsupported SASL mechanism "${mechanism}"`);
        }
        // Same iteration count (default 4096) either way; only the salt source differs.
        this.scram = this.known ? new ScramServer(this.password) : new ScramServer(this.password, { salt: fakeSaltFor(this.user), keys: fakeKeysFor(this.user) });
        const serverFirst = this.scram.handleClientFirst(data.toString('utf8'));
        this.step = 'scram-final';
        return { send: msg.authenticationSASLContinue(serverFirst), done: false };
      }
      case 'scram-final': {
        const clientFinal = payload.toString('utf8');
        const result = this.scram!.handleClientFinal(clientFinal);
        this.step = 'done';
        if (!result.ok || !this.known) throw this.failed();
        return { send: Buffer.concat([msg.authenticationSASLFinal(result.serverFinal!), msg.authenticationOk()]), done: true };
      }
      default:
        throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'unexpected password message');
    }
  }

  private failed(): SwitchyardError {
    return new SwitchyardError(ErrorCodes.AUTH_FAILED, `password authentication failed for user "${this.user}"`);
  }
}

function timingSafeEqualStr(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  // Compare equal-length buffers so the time does not depend on where they differ.
  const len = Math.max(ab.length, bb.length);
  let diff = ab.length ^ bb.length;
  for (let i = 0; i < len; i++) diff |= (ab[i] ?? 0) ^ (bb[i] ?? 0);
  return diff === 0;
}
