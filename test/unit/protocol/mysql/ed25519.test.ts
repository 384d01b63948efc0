import { describe, expect, it } from 'vitest';
import { createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import fc from 'fast-check';
import { ed25519PublicKey, ed25519Signature } from '../../../../src/protocol/mysql/ed25519.js';

/** A node:crypto Ed25519 key from a 32-byte seed (PKCS#8 DER prefix + seed). */
function nodeKey(seed: Buffer) {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

describe('MariaDB client_ed25519 signature', () => {
  it('equals node:crypto Ed25519 when the password is a 32-byte seed (200 random seeds and scrambles)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed, scramble) => {
        const key = nodeKey(Buffer.from(seed));
        const ours = ed25519Signature(Buffer.from(seed), scramble);
        expect(ours.equals(sign(null, scramble, key))).toBe(true);
        const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
        expect(ed25519PublicKey(Buffer.from(seed)).equals(spki.subarray(spki.length - 32))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('for a password of any length, verifies under the public key derived from it', () => {
    for (const pw of ['', 'x', 'secret', 'pässwörd', 'p'.repeat(100)]) {
      const scramble = randomBytes(32);
      const sig = ed25519Signature(pw, scramble);
      expect(sig).toHaveLength(64);
      const spkiDer = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), ed25519PublicKey(pw)]);
      const pub = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
      expect(verify(null, scramble, pub, sig)).toBe(true);
      // Another password's signature does not verify.
      expect(verify(null, scramble, pub, ed25519Signature(pw + '!', scramble))).toBe(false);
    }
  });

  it.each([
    // Read from a real MariaDB 10.11.19: CREATE USER ... IDENTIFIED VIA ed25519 USING PASSWORD('foo'),
    // then mysql.global_priv's authentication_string.
    ['foo', 'vubFBzIrapbfHct1/J72dnUryz5VS7lA6XHH8sIx4TI'],
    ['foobar', 'qv2mG6HWCuy32Slb5xhV4THStewNz2VINVPbgk+XAJ8'],
    ['foo bar', 'Y5fV74JAVRMOK2cdnUsYS+WW9sXaaL/o+6WGKOgqnzc'],
  ])("derives the public key MariaDB stores for %j", (pw, stored) => {
    expect(ed25519PublicKey(pw).toString('base64').replace(/=+$/, '')).toBe(stored);
  });
});
