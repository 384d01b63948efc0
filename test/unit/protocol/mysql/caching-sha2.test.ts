import { describe, expect, it } from 'vitest';
import { constants, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import { CachingSha2Exchange, Cap, buildSslRequest, isSslRequest, rsaEncryptPassword, scramblePassword } from '../../../../src/protocol/mysql/index.js';

const nonce = Buffer.from(Array.from({ length: 20 }, (_, i) => i + 1));

describe('SSLRequest', () => {
  it('is the 32-byte head of a HandshakeResponse41 with CLIENT_SSL, zero filler', () => {
    const b = buildSslRequest({ capabilities: Cap.PROTOCOL_41 | Cap.PLUGIN_AUTH, maxPacketSize: 1 << 30, charset: 45 });
    expect(b.length).toBe(32);
    expect(b.readUInt32LE(0)).toBe((Cap.PROTOCOL_41 | Cap.PLUGIN_AUTH | Cap.SSL) >>> 0);
    expect(b.readUInt32LE(4)).toBe(1 << 30);
    expect(b[8]).toBe(45);
    expect(b.subarray(9).every((x) => x === 0)).toBe(true);
    expect(isSslRequest(b)).toBe(true);
  });
});

describe('caching_sha2_password full authentication', () => {
  it('scrambles password + NUL with the nonce repeated (longer than 20 bytes wraps)', () => {
    const pw = 'a'.repeat(25);
    const s = scramblePassword(pw, nonce);
    expect(s.length).toBe(26);
    for (let i = 0; i < 26; i++) expect(s[i]).toBe((i < 25 ? 0x61 : 0) ^ nonce[i % 20]!);
  });

  it('RSA-OAEP: the private key recovers the scrambled password', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const enc = rsaEncryptPassword('pw ✓', nonce, pem);
    expect(enc.length).toBe(256);
    expect(privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, enc)).toEqual(scramblePassword('pw ✓', nonce));
    expect(() => rsaEncryptPassword('x'.repeat(300), nonce, pem)).toThrow(/cannot encrypt/);
  });

  it('the exchange: 0x03 waits for the OK; 0x04 over TLS sends the cleartext; 0x04 in plain asks for the key, then encrypts', () => {
    expect(new CachingSha2Exchange('pw', nonce, false).onMoreData(Buffer.from([1, 3]))).toBeNull();
    expect(new CachingSha2Exchange('pw', nonce, true).onMoreData(Buffer.from([1, 4]))).toEqual(Buffer.from('pw\0'));
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const x = new CachingSha2Exchange('pw', nonce, false);
    expect(x.onMoreData(Buffer.from([1, 4]))).toEqual(Buffer.from([2]));
    const enc = x.onMoreData(Buffer.concat([Buffer.from([1]), Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }) as string)]));
    expect(enc!.length).toBe(256);
    expect(() => new CachingSha2Exchange('pw', nonce, false).onMoreData(Buffer.from([1, 9]))).toThrow(/unexpected AuthMoreData/);
    const y = new CachingSha2Exchange('pw', nonce, false);
    y.onMoreData(Buffer.from([1, 4]));
    expect(() => y.onMoreData(Buffer.from([1, 0x41, 0x42]))).toThrow(/PEM public key/);
  });
});
