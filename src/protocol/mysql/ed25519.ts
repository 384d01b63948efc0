/**
 * MariaDB's `client_ed25519` authentication (server plugin auth_ed25519): the
 * client signs the server's 32-byte scramble with an Ed25519 key derived from
 * the password, and sends the 64-byte signature.
 *
 * The derivation is standard Ed25519 signing (RFC 8032 5.1.6) with the
 * password in place of the 32-byte seed: the secret scalar and the nonce
 * prefix are SHA-512(password) for a password of any length. node:crypto
 * accepts only 32-byte seeds, so the curve arithmetic is done here with
 * BigInt (about 3 ms per signature on this machine; backend logins are pooled,
 * so it is paid once per backend connection, never per query). For a 32-byte
 * password the result is byte-identical to node:crypto's Ed25519, which the
 * unit test checks. Pure: no I/O.
 */
import { createHash } from 'node:crypto';

const P = 2n ** 255n - 19n;
/** The group order. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const D = mod(-121665n * inverse(121666n));
const SQRT_M1 = pow(2n, (P - 1n) / 4n);

/** A point in extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, x*y = T/Z. */
interface Point {
  x: bigint;
  y: bigint;
  z: bigint;
  t: bigint;
}

const BASE: Point = (() => {
  const y = mod(4n * inverse(5n));
  const x = recoverX(y, 0n);
  return { x, y, z: 1n, t: mod(x * y) };
})();
const IDENTITY: Point = { x: 0n, y: 1n, z: 1n, t: 0n };

function mod(a: bigint, m = P): bigint {
  const r = a % m;
  return r >= 0n ? r : r + m;
}

function pow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = mod(result * b);
    b = mod(b * b);
    e >>= 1n;
  }
  return result;
}

function inverse(a: bigint): bigint {
  return pow(a, P - 2n);
}

function recoverX(y: bigint, sign: bigint): bigint {
  const xx = mod((y * y - 1n) * inverse(D * y * y + 1n));
  let x = pow(xx, (P + 3n) / 8n);
  if (mod(x * x - xx) !== 0n) x = mod(x * SQRT_M1);
  if ((x & 1n) !== sign) x = P - x;
  return x;
}

/** RFC 8032 5.1.4, "add-2008-hwcd-3". */
function add(p: Point, q: Point): Point {
  const a = mod((p.y - p.x) * (q.y - q.x));
  const b = mod((p.y + p.x) * (q.y + q.x));
  const c = mod(2n * p.t * q.t * D);
  const d = mod(2n * p.z * q.z);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return { x: mod(e * f), y: mod(g * h), z: mod(f * g), t: mod(e * h) };
}

function multiply(scalar: bigint, point: Point): Point {
  let result = IDENTITY;
  let addend = point;
  let k = scalar;
  while (k > 0n) {
    if (k & 1n) result = add(result, addend);
    addend = add(addend, addend);
    k >>= 1n;
  }
  return result;
}

function encodePoint(p: Point): Buffer {
  const zi = inverse(p.z);
  const x = mod(p.x * zi);
  const y = mod(p.y * zi);
  const out = littleEndian(y, 32);
  if (x & 1n) out[31]! |= 0x80;
  return out;
}

function littleEndian(n: bigint, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let v = n;
  for (let i = 0; i < bytes; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function fromLittleEndian(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

function sha512(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** 1. of the procedure below: the secret scalar and the nonce prefix from SHA-512(password). */
function secretOf(password: string | Buffer): { a: bigint; prefix: Buffer } {
  const h = sha512(typeof password === 'string' ? Buffer.from(password, 'utf8') : password);
  const scalarBytes = Buffer.from(h.subarray(0, 32));
  scalarBytes[0]! &= 248;
  scalarBytes[31]! &= 63;
  scalarBytes[31]! |= 64;
  return { a: fromLittleEndian(scalarBytes), prefix: h.subarray(32) };
}

/**
 * The signature MariaDB's client_ed25519 plugin sends:
 *   1. h = SHA-512(password); the secret scalar a is h[0..32) clamped, the nonce prefix is h[32..64);
 *   2. A = a*B (the public key the server stored: `ed25519_password('...')`);
 *   3. r = SHA-512(prefix || scramble) mod L, R = r*B;
 *   4. S = (r + SHA-512(R || A || scramble) * a) mod L; the signature is R || S.
 */
export function ed25519Signature(password: string | Buffer, scramble: Uint8Array): Buffer {
  const { a, prefix } = secretOf(password);
  const publicKey = encodePoint(multiply(a, BASE));
  const r = mod(fromLittleEndian(sha512(prefix, scramble)), L);
  const R = encodePoint(multiply(r, BASE));
  const k = mod(fromLittleEndian(sha512(R, publicKey, scramble)), L);
  const S = mod(r + k * a, L);
  return Buffer.concat([R, littleEndian(S, 32)]);
}

/** The public key the server stores for a password (`SELECT ed25519_password('pw')` is its base64 without padding). */
export function ed25519PublicKey(password: string | Buffer): Buffer {
  return encodePoint(multiply(secretOf(password).a, BASE));
}
