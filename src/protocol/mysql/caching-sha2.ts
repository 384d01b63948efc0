import { constants, publicEncrypt } from 'node:crypto';
import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { Cap } from './constants.js';

/**
 * The client side of caching_sha2_password after the fast-path token (MySQL 8's
 * default plugin), and the SSLRequest that precedes a TLS upgrade.
 *
 * The server answers the token with AuthMoreData (0x01 + one status byte):
 *   0x03  fast auth succeeded (the server had the password's hash cached); an OK follows;
 *   0x04  perform full authentication: the server needs the password itself, once, to fill its cache.
 * Full authentication sends the password NUL-terminated: in clear when the
 * connection is TLS; otherwise XOR-ed with the 20-byte nonce and encrypted
 * with the server's RSA public key (RSA-OAEP), which the client asks for with 0x02.
 */
export const Sha2 = {
  MORE_DATA: 0x01,
  REQUEST_PUBLIC_KEY: 0x02,
  FAST_AUTH_OK: 0x03,
  PERFORM_FULL_AUTH: 0x04,
} as const;

/** SSLRequest: the first 32 bytes of a HandshakeResponse41, with CLIENT_SSL set; TLS starts right after it. */
export function buildSslRequest(h: { capabilities: number; maxPacketSize: number; charset: number }): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32LE((h.capabilities | Cap.SSL) >>> 0, 0);
  b.writeUInt32LE(h.maxPacketSize >>> 0, 4);
  b[8] = h.charset;
  return b;
}

/** The password NUL-terminated, XOR-ed with the nonce repeated (what RSA encrypts, so a replayed ciphertext is useless with another nonce). */
export function scramblePassword(password: string, nonce: Buffer): Buffer {
  const p = Buffer.from(password + '\0', 'utf8');
  const n = nonce.subarray(0, 20);
  const out = Buffer.allocUnsafe(p.length);
  for (let i = 0; i < p.length; i++) out[i] = p[i]! ^ n[i % n.length]!;
  return out;
}

/** RSA-OAEP (SHA-1, as MySQL's server decrypts it) of the scrambled password with the server's PEM public key. */
export function rsaEncryptPassword(password: string, nonce: Buffer, publicKeyPem: string): Buffer {
  try {
    return publicEncrypt({ key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING }, scramblePassword(password, nonce));
  } catch (e) {
    // A malformed key, or a password too long for the key size (2048-bit: 214 bytes at most).
    throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `caching_sha2_password: cannot encrypt the password with the server's RSA key: ${(e as Error).message}`);
  }
}

/**
 * One login's caching_sha2_password exchange after the token: feed it each
 * AuthMoreData payload; it returns the payload to send back, or null when the
 * server speaks next (fast auth success: the OK follows).
 */
export class CachingSha2Exchange {
  private awaitingKey = false;

  constructor(
    private readonly password: string,
    private readonly nonce: Buffer,
    /** The connection is TLS: the password may travel in clear. */
    private readonly secure: boolean,
  ) {}

  onMoreData(payload: Buffer): Buffer | null {
    if (payload[0] !== Sha2.MORE_DATA) throw violation(`expected AuthMoreData, got 0x${(payload[0] ?? 0).toString(16)}`);
    if (this.awaitingKey) {
      // 0x01 + the PEM public key ("-----BEGIN PUBLIC KEY-----...").
      this.awaitingKey = false;
      const pem = payload.subarray(1).toString('latin1');
      if (!pem.includes('BEGIN PUBLIC KEY')) throw violation('the server did not send a PEM public key');
      return rsaEncryptPassword(this.password, this.nonce, pem);
    }
    const status = payload.length === 2 ? payload[1] : -1;
    if (status === Sha2.FAST_AUTH_OK) return null;
    if (status === Sha2.PERFORM_FULL_AUTH) {
      if (this.secure) return Buffer.from(this.password + '\0', 'utf8');
      this.awaitingKey = true;
      return Buffer.from([Sha2.REQUEST_PUBLIC_KEY]);
    }
    throw violation(`unexpected AuthMoreData of ${payload.length} bytes`);
  }
}

function violation(why: string): SwitchyardError {
  return new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `caching_sha2_password: ${why}`);
}
