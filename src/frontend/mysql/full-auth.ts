import { constants, generateKeyPair, privateDecrypt, type KeyObject } from 'node:crypto';
import type { ServerRsaKeys } from '../../protocol/mysql/server-auth.js';

/**
 * The RSA key pair of caching_sha2_password / sha256_password full
 * authentication without TLS (see src/protocol/mysql/server-auth.ts).
 *
 * 1. One 2048-bit pair per process, made on first need and kept: clients may
 *    cache the public key (mysql2's onServerPublicKey, a --server-public-key-path
 *    file), and it must stay valid as long as the process runs.
 * 2. Made with the asynchronous generateKeyPair: the prime search (49-100 ms
 *    measured for generateKeyPairSync on this machine) runs on the libuv
 *    thread pool, so sessions already running are not held up by it; only the
 *    first client that needs the key waits.
 * 3. The private key never leaves this module and is never logged; a failed
 *    generation is forgotten so the next login tries again.
 */
let pending: Promise<ServerRsaKeys> | null = null;

export function serverRsaKeys(): Promise<ServerRsaKeys> {
  if (!pending) {
    pending = makeKeys();
    pending.catch(() => {
      pending = null;
    });
  }
  return pending;
}

const MODULUS_BITS = 2048;

function makeKeys(): Promise<ServerRsaKeys> {
  return new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: MODULUS_BITS }, (err, publicKey: KeyObject, privateKey: KeyObject) => {
      if (err) return reject(err);
      const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
      resolve({
        publicKeyPem,
        cipherBytes: MODULUS_BITS / 8,
        decrypt(cipher: Buffer): Buffer | null {
          try {
            return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, cipher);
          } catch {
            return null;
          }
        },
      });
    });
  });
}
