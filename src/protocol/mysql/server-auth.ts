import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { buildAuthSwitch } from './handshake.js';
import { cachingSha2Token, nativePasswordToken, verifyToken } from './auth.js';

/**
 * The server side of a MySQL client login's authentication exchange, as a
 * synchronous state machine over packet payloads (framing and sequence ids
 * are the caller's). The proxy knows every user's cleartext password, so:
 *
 *   - mysql_native_password and a 32-byte caching_sha2_password scramble are
 *     checked at once (a wrong 32-byte scramble is a failure, no second chance);
 *   - a caching_sha2_password or sha256_password answer with no data at all is
 *     what libmysqlclient / Connector/C send when the handshake named another
 *     plugin ("data was prepared for a different plugin"): they wait for an
 *     AuthSwitchRequest of their plugin with the nonce, so they get one;
 *   - a lone NUL is "no password" (libmysqlclient's answer for an empty one):
 *     right only for a user without a password, as MySQL answers;
 *   - caching_sha2_password data that is none of these cannot be a fast-path
 *     scramble: full authentication (0x01 0x04) follows;
 *   - sha256_password is always full authentication;
 *   - any other plugin is switched to mysql_native_password (same nonce).
 *
 * Full authentication: on TLS the client sends its password NUL-terminated in
 * clear; without TLS it asks for the public key (0x02 for caching_sha2, 0x01
 * for sha256_password), gets 0x01 + PEM, and sends RSA-OAEP(password NUL XOR
 * nonce repeated). Anything else without TLS is refused, even a cleartext
 * password that would match: a password never travels in clear over plain TCP.
 *
 * An unknown user is checked against a random password and goes through every
 * step a known one would (key exchange included): same work, same answer.
 */

/** The private half of the proxy's key pair, as this machine needs it. */
export interface ServerRsaKeys {
  /** SubjectPublicKeyInfo PEM, sent to clients that ask for it. */
  publicKeyPem: string;
  /** RSA modulus size in bytes: the length of every valid ciphertext. */
  cipherBytes: number;
  /** RSA-OAEP (SHA-1) decryption; null when the ciphertext does not decrypt. */
  decrypt(cipher: Buffer): Buffer | null;
}

export type ServerAuthStep =
  /** Send these payloads (sequence ids continue), then feed the client's next packet to next(). */
  | { send: Buffer[]; then: 'wait' }
  /** Send these, then call withKeys() once the key pair is ready (no client packet is expected meanwhile). */
  | { send: Buffer[]; then: 'keys' }
  /** Send these (caching_sha2 fast path: 0x01 0x03), then the login goes on (backend check, OK). */
  | { send: Buffer[]; then: 'ok' }
  /** Access denied (1045). `usedPassword` is for the message's "(using password: YES/NO)". */
  | { send: Buffer[]; then: 'fail'; usedPassword: boolean; reason: ServerAuthFailure };

export type ServerAuthFailure =
  | 'wrong-password'
  | 'unknown-user'
  | 'cleartext-without-tls'
  | 'bad-ciphertext'
  | 'unexpected-packet';

export const FAST_AUTH_SUCCESS = Buffer.from([0x01, 0x03]);
export const PERFORM_FULL_AUTH = Buffer.from([0x01, 0x04]);
/** caching_sha2_password's "request public key" byte; sha256_password uses 0x01. */
const CACHING_SHA2_KEY_REQUEST = 0x02;
const SHA256_KEY_REQUEST = 0x01;
const CACHING_SHA2_SCRAMBLE_BYTES = 32;

type Phase =
  | 'start'
  /** After our AuthSwitchRequest to `plugin`: the client's first answer. */
  | 'switched'
  /** Waiting for the key pair before the full-auth exchange starts. */
  | 'keys'
  /** Full auth: the client's first packet (key request, password or ciphertext). */
  | 'full'
  /** Full auth, public key sent: the ciphertext. */
  | 'cipher'
  | 'done';

export interface ServerAuthOptions {
  /** The user's configured password; undefined for an unknown user. */
  password: string | undefined;
  /** The 20-byte nonce of the login's handshake. */
  nonce: Buffer;
  /** The client connection is TLS. */
  secure: boolean;
}

export class ServerAuth {
  private readonly password: string;
  private readonly known: boolean;
  private plugin = 'mysql_native_password';
  private phase: Phase = 'start';
  private keys: ServerRsaKeys | null = null;
  /** Full auth whose first client packet already arrived (sha256_password's handshake response). */
  private pendingFirst: Buffer | null = null;

  constructor(private readonly opts: ServerAuthOptions) {
    this.known = opts.password !== undefined;
    this.password = opts.password ?? randomBytes(16).toString('hex');
  }

  /** The handshake response (or COM_CHANGE_USER): its plugin (null: none named) and auth data. */
  start(plugin: string | null, data: Buffer): ServerAuthStep {
    if (this.phase !== 'start') return this.unexpected();
    const p = plugin ?? 'mysql_native_password';
    if (p === 'mysql_native_password') {
      this.plugin = p;
      return this.checkScramble(data);
    }
    if (p === 'caching_sha2_password' || p === 'sha256_password') {
      this.plugin = p;
      // 1. No data: the client computed nothing for the handshake's plugin and waits for its own.
      if (data.length === 0) return this.switchTo(p);
      if (p === 'caching_sha2_password') {
        // 2. A fast-path scramble, or a lone NUL (libmysqlclient's "no password"): checked now, right or wrong.
        if (isNoPassword(data)) return this.checkScramble(Buffer.alloc(0));
        if (data.length === CACHING_SHA2_SCRAMBLE_BYTES) return this.checkScramble(data);
        // 3. Anything else cannot be verified as one: full authentication.
        return this.beginFull(null);
      }
      // 4. sha256_password: this packet already is the first full-auth packet.
      return this.beginFull(data);
    }
    return this.switchTo('mysql_native_password');
  }

  /** The client's next packet. */
  next(payload: Buffer): ServerAuthStep {
    switch (this.phase) {
      case 'switched':
        if (this.plugin === 'sha256_password') return this.beginFull(payload);
        if (this.plugin === 'caching_sha2_password') {
          // After our switch: no data or a lone NUL is an empty password (right only for a user
          // without one, as MySQL answers); a 32-byte scramble is checked; anything else is full auth.
          if (isNoPassword(payload)) return this.checkScramble(Buffer.alloc(0));
          if (payload.length !== CACHING_SHA2_SCRAMBLE_BYTES) return this.beginFull(null);
        }
        return this.checkScramble(payload);
      case 'full':
        return this.fullPacket(payload);
      case 'cipher':
        if (payload.length !== this.keys!.cipherBytes) return this.failWith('bad-ciphertext', true);
        return this.decryptAndCheck(payload);
      default:
        return this.unexpected();
    }
  }

  /** The key pair is ready (after a 'keys' step). */
  withKeys(keys: ServerRsaKeys): ServerAuthStep {
    if (this.phase !== 'keys') return this.unexpected();
    this.keys = keys;
    this.phase = 'full';
    const first = this.pendingFirst;
    this.pendingFirst = null;
    if (first) return this.fullPacket(first);
    return { send: [PERFORM_FULL_AUTH], then: 'wait' };
  }

  // ---- steps ---------------------------------------------------------------

  private switchTo(plugin: string): ServerAuthStep {
    this.plugin = plugin;
    this.phase = 'switched';
    return { send: [buildAuthSwitch(plugin, this.opts.nonce)], then: 'wait' };
  }

  private checkScramble(token: Buffer): ServerAuthStep {
    this.phase = 'done';
    const sha2 = this.plugin === 'caching_sha2_password';
    const expected = sha2 ? cachingSha2Token(this.password, this.opts.nonce) : nativePasswordToken(this.password, this.opts.nonce);
    const ok = verifyToken(expected, token);
    if (!this.known || !ok) return this.failWith(this.known ? 'wrong-password' : 'unknown-user', token.length > 0);
    return { send: sha2 ? [FAST_AUTH_SUCCESS] : [], then: 'ok' };
  }

  /**
   * Full authentication: caching_sha2_password prompts with 0x01 0x04 first;
   * sha256_password's first packet (`first`) is already here. Without TLS the
   * key pair must be ready before anything else (its size says what a
   * ciphertext is).
   */
  private beginFull(first: Buffer | null): ServerAuthStep {
    if (!this.opts.secure && this.keys === null) {
      this.phase = 'keys';
      this.pendingFirst = first;
      return { send: [], then: 'keys' };
    }
    this.phase = 'full';
    if (first) return this.fullPacket(first);
    return { send: [PERFORM_FULL_AUTH], then: 'wait' };
  }

  private fullPacket(payload: Buffer): ServerAuthStep {
    // An empty password ("" or a lone NUL) is no secret: compared as such on any transport.
    if (isNoPassword(payload)) return this.checkCleartext(Buffer.alloc(0));
    if (this.opts.secure) return this.checkCleartext(untilNul(payload));
    const keys = this.keys!;
    const keyRequest = this.plugin === 'sha256_password' ? SHA256_KEY_REQUEST : CACHING_SHA2_KEY_REQUEST;
    if (payload.length === 1 && payload[0] === keyRequest) {
      this.phase = 'cipher';
      return { send: [Buffer.concat([Buffer.from([0x01]), Buffer.from(keys.publicKeyPem, 'ascii')])], then: 'wait' };
    }
    // A client that already has the key sends the ciphertext at once.
    if (payload.length === keys.cipherBytes) return this.decryptAndCheck(payload);
    // Whatever this is (most likely a password in clear), it is not accepted over plain TCP.
    return this.failWith('cleartext-without-tls', true);
  }

  private decryptAndCheck(cipher: Buffer): ServerAuthStep {
    const plain = this.keys!.decrypt(cipher);
    if (plain === null) {
      // Same hashing work as a decrypted wrong password.
      verifyCleartext(this.password, cipher);
      return this.failWith('bad-ciphertext', true);
    }
    const nonce = this.opts.nonce.subarray(0, 20);
    for (let i = 0; i < plain.length; i++) plain[i] = plain[i]! ^ nonce[i % nonce.length]!;
    return this.checkCleartext(untilNul(plain));
  }

  private checkCleartext(got: Buffer): ServerAuthStep {
    this.phase = 'done';
    const ok = verifyCleartext(this.password, got);
    if (!this.known || !ok) return this.failWith(this.known ? 'wrong-password' : 'unknown-user', got.length > 0);
    return { send: [], then: 'ok' };
  }

  private unexpected(): ServerAuthStep {
    return this.failWith('unexpected-packet', true);
  }

  private failWith(reason: ServerAuthFailure, usedPassword: boolean): ServerAuthStep {
    this.phase = 'done';
    return { send: [], then: 'fail', usedPassword, reason };
  }
}

/** "No password": no data or a single NUL (what clients send for an empty password). */
function isNoPassword(b: Buffer): boolean {
  return b.length === 0 || (b.length === 1 && b[0] === 0);
}

/** The bytes before the first NUL (all of them without one): the password of a NUL-terminated answer. */
function untilNul(b: Buffer): Buffer {
  const nul = b.indexOf(0);
  return nul < 0 ? b : b.subarray(0, nul);
}

/**
 * Compares a cleartext password with the configured one in constant time:
 * both are hashed first, so neither their contents nor their lengths show in
 * the timing.
 */
export function verifyCleartext(expected: string, got: Buffer): boolean {
  const a = createHash('sha256').update(Buffer.from(expected, 'utf8')).digest();
  const b = createHash('sha256').update(got).digest();
  return timingSafeEqual(a, b);
}
