import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCodes, SwitchyardError } from '../../errors.js';

/*
 * PostgreSQL password authentication: MD5 and SCRAM-SHA-256 (RFC 5802 / 7677),
 * both sides. Passwords are normalized with NFKC as an approximation of
 * SASLprep (exact for ASCII passwords).
 */

export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
}

const hmac = (key: Buffer, text: string | Buffer) => createHmac('sha256', key).update(text).digest();
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();
const xor = (a: Buffer, b: Buffer) => {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
};

interface ScramKeys {
  salted: Buffer;
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/**
 * PBKDF2 with 4096 iterations costs about 2-4 ms of CPU; a proxy that logs in
 * thousands of clients caches the derived keys per (password, salt, iterations).
 */
const keyCache = new Map<string, ScramKeys>();

function deriveKeys(password: string, salt: Buffer, iterations: number): ScramKeys {
  const cacheKey = `${iterations}:${salt.toString('base64')}:${password}`;
  const hit = keyCache.get(cacheKey);
  if (hit) return hit;
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  const keys = { salted, clientKey, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
  if (keyCache.size > 1000) keyCache.clear();
  keyCache.set(cacheKey, keys);
  return keys;
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

function bad(what: string): SwitchyardError {
  return new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `malformed SCRAM ${what}`);
}

export class ScramClient {
  private readonly nonce: string;
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | null = null;

  constructor(
    private readonly user: string,
    private readonly password: string,
    nonce?: string,
  ) {
    this.nonce = nonce ?? randomBytes(18).toString('base64');
  }

  clientFirstMessage(): string {
    // PostgreSQL ignores the SCRAM user name (it uses the startup packet's); send it empty.
    this.clientFirstBare = `n=,r=${this.nonce}`;
    void this.user;
    return `n,,${this.clientFirstBare}`;
  }

  handleServerFirst(serverFirst: string): string {
    const a = attributes(serverFirst);
    const nonce = a.get('r');
    const salt = a.get('s');
    const iterations = Number(a.get('i'));
    if (!nonce || !salt || !Number.isInteger(iterations) || iterations < 1) throw bad('server-first-message');
    if (!nonce.startsWith(this.nonce)) throw bad('server nonce');
    const keys = deriveKeys(this.password, Buffer.from(salt, 'base64'), iterations);
    const clientFinalNoProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${clientFinalNoProof}`;
    const proof = xor(keys.clientKey, hmac(keys.storedKey, authMessage));
    this.expectedServerSignature = hmac(keys.serverKey, authMessage);
    return `${clientFinalNoProof},p=${proof.toString('base64')}`;
  }

  verifyServerFinal(serverFinal: string): void {
    const a = attributes(serverFinal);
    if (a.has('e')) throw new SwitchyardError(ErrorCodes.BACKEND_AUTH_FAILED, `SCRAM error: ${a.get('e')}`);
    const v = a.get('v');
    if (!v || !this.expectedServerSignature) throw bad('server-final-message');
    const got = Buffer.from(v, 'base64');
    if (got.length !== this.expectedServerSignature.length || !timingSafeEqual(got, this.expectedServerSignature)) {
      throw new SwitchyardError(ErrorCodes.BACKEND_AUTH_FAILED, 'the server failed SCRAM verification');
    }
  }
}

/** Server side of SCRAM-SHA-256, for a password the proxy knows in plain text (from its config). */
export class ScramServer {
  private readonly iterations: number;
  private readonly salt: Buffer;
  private readonly serverNonce: string;
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';

  constructor(
    private readonly password: string,
    opts: { iterations?: number; salt?: Buffer; nonce?: string } = {},
  ) {
    this.iterations = opts.iterations ?? 4096;
    this.salt = opts.salt ?? saltFor(password);
    this.serverNonce = opts.nonce ?? randomBytes(18).toString('base64');
  }

  handleClientFirst(clientFirst: string): string {
    // gs2 header: "n,," (no channel binding) or "y,," (client supports it, server does not offer it).
    const m = /^([ny]),(a=[^,]*)?,(.*)$/.exec(clientFirst);
    if (!m) {
      if (clientFirst.startsWith('p=')) {
        throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'SCRAM channel binding is not supported by switchyard');
      }
      throw bad('client-first-message');
    }
    this.clientFirstBare = m[3]!;
    const clientNonce = attributes(this.clientFirstBare).get('r');
    if (!clientNonce) throw bad('client-first-message');
    this.nonce = clientNonce + this.serverNonce;
    this.serverFirst = `r=${this.nonce},s=${this.salt.toString('base64')},i=${this.iterations}`;
    return this.serverFirst;
  }

  handleClientFinal(clientFinal: string): { ok: boolean; serverFinal?: string } {
    const proofAt = clientFinal.lastIndexOf(',p=');
    if (proofAt < 0) throw bad('client-final-message');
    const withoutProof = clientFinal.slice(0, proofAt);
    const a = attributes(clientFinal);
    if (a.get('r') !== this.nonce) throw bad('nonce');
    const proof = Buffer.from(clientFinal.slice(proofAt + 3), 'base64');
    const keys = deriveKeys(this.password, this.salt, this.iterations);
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const signature = hmac(keys.storedKey, authMessage);
    if (proof.length !== signature.length) return { ok: false };
    const clientKey = xor(proof, signature);
    const ok = timingSafeEqual(sha256(clientKey), keys.storedKey);
    if (!ok) return { ok: false };
    return { ok: true, serverFinal: `v=${hmac(keys.serverKey, authMessage).toString('base64')}` };
  }
}

/**
 * One salt per password for the process lifetime, so the derived keys are
 * computed once (see keyCache). A fresh salt per restart still changes them.
 */
const salts = new Map<string, Buffer>();
function saltFor(password: string): Buffer {
  let s = salts.get(password);
  if (!s) {
    s = randomBytes(16);
    if (salts.size > 1000) salts.clear();
    salts.set(password, s);
  }
  return s;
}
