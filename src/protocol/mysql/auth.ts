import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const sha1 = (...b: Buffer[]) => {
  const h = createHash('sha1');
  for (const x of b) h.update(x);
  return h.digest();
};
const sha256 = (...b: Buffer[]) => {
  const h = createHash('sha256');
  for (const x of b) h.update(x);
  return h.digest();
};
const xor = (a: Buffer, b: Buffer) => {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i % b.length]!;
  return out;
};

/** 20 bytes of nonce, avoiding NUL (the handshake carries part of it NUL-terminated). */
export function makeNonce(): Buffer {
  const n = randomBytes(20);
  for (let i = 0; i < n.length; i++) n[i] = (n[i]! % 127) + 1;
  return n;
}

/** mysql_native_password: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw))); empty password -> empty token. */
export function nativePasswordToken(password: string, nonce: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const p1 = sha1(Buffer.from(password, 'utf8'));
  return xor(p1, sha1(nonce.subarray(0, 20), sha1(p1)));
}

/** caching_sha2_password fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce). */
export function cachingSha2Token(password: string, nonce: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const p1 = sha256(Buffer.from(password, 'utf8'));
  return xor(p1, sha256(sha256(p1), nonce.subarray(0, 20)));
}

/**
 * Checks a client's token against the cleartext password, in constant time for
 * equal lengths. Used for both plugins with the matching token function.
 */
export function verifyToken(expected: Buffer, got: Buffer): boolean {
  if (expected.length !== got.length) {
    // Still compare something of fixed cost so timing does not tell lengths apart.
    timingSafeEqual(expected, expected);
    return false;
  }
  return timingSafeEqual(expected, got);
}
