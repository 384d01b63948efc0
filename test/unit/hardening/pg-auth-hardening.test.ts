import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ClientAuthenticator, fakeSaltFor } from '../../../src/frontend/pg/auth.js';
import { ErrorCodes, type SwitchyardError } from '../../../src/errors.js';
import { ScramClient, scramKeyCacheSize } from '../../../src/protocol/pg/index.js';
import { AUTH_DELAY_BASE_MS, AUTH_DELAY_CAP_MS, authFailureDelay, authSucceeded } from '../../../src/frontend/pg/startup.js';

/** The server-first-message's salt for `user` (SASLInitialResponse with a fixed client nonce). */
function saltShown(user: string, password: string | undefined): string {
  const a = new ClientAuthenticator('scram-sha-256', user, password);
  a.begin();
  const data = Buffer.from('n,,n=,r=clientnonce');
  const len = Buffer.alloc(4);
  len.writeInt32BE(data.length);
  const { send } = a.next(Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), len, data]));
  // AuthenticationSASLContinue: 'R', int32 len, int32 11, then "r=...,s=SALT,i=ITER".
  const text = send.subarray(9).toString('utf8');
  return /,s=([^,]+),i=(\d+)/.exec(text)!.slice(1).join(' i=');
}

describe('unknown users look like known ones', () => {
  it('an unknown user gets a salt that is stable per name and differs between names, with the same iteration count', () => {
    const ghost1 = saltShown('ghost', undefined);
    expect(saltShown('ghost', undefined)).toBe(ghost1);
    expect(saltShown('phantom', undefined)).not.toBe(ghost1);
    expect(ghost1.endsWith(' i=4096')).toBe(true);
    expect(saltShown('app', 'secret').endsWith(' i=4096')).toBe(true);
    expect(fakeSaltFor('ghost')).toHaveLength(16);
  });
});

describe('auth failure delay per source address', () => {
  it('first failure is free, then doubles from the base up to the cap; a success forgets', () => {
    const addr = '192.0.2.1';
    const t = 1_000_000;
    expect(authFailureDelay(addr, t)).toBe(0);
    expect(authFailureDelay(addr, t)).toBe(AUTH_DELAY_BASE_MS);
    expect(authFailureDelay(addr, t)).toBe(AUTH_DELAY_BASE_MS * 2);
    expect(authFailureDelay(addr, t)).toBe(AUTH_DELAY_BASE_MS * 4);
    for (let i = 0; i < 30; i++) authFailureDelay(addr, t);
    expect(authFailureDelay(addr, t)).toBe(AUTH_DELAY_CAP_MS);
    expect(authFailureDelay('192.0.2.2', t)).toBe(0); // other addresses unaffected
    authSucceeded(addr);
    expect(authFailureDelay(addr, t)).toBe(0);
  });

  it('an address is forgotten after 10 minutes without a failure', () => {
    const addr = '192.0.2.3';
    authFailureDelay(addr, 0);
    expect(authFailureDelay(addr, 1)).toBe(AUTH_DELAY_BASE_MS);
    expect(authFailureDelay(addr, 1 + 10 * 60_000 + 1)).toBe(0);
  });
});

describe('unknown users cost what a wrong password costs', () => {
  /**
   * A whole SCRAM exchange; true when the proxy accepted it. The client's proof is
   * computed from `clientPassword` by ScramClient, except when `clientPassword` is null:
   * then it is 32 random bytes (the test client then derives no keys of its own, which
   * would share the module's key cache with the server side being measured).
   */
  function login(user: string, known: string | undefined, clientPassword: string | null): boolean {
    const a = new ClientAuthenticator('scram-sha-256', user, known);
    a.begin();
    const client = new ScramClient(user, clientPassword ?? '');
    const first = Buffer.from(client.clientFirstMessage());
    const len = Buffer.alloc(4);
    len.writeInt32BE(first.length);
    const cont = a.next(Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), len, first]));
    const serverFirst = cont.send.subarray(9).toString('utf8');
    const final = clientPassword !== null
      ? client.handleServerFirst(serverFirst)
      : `c=biws,r=${/r=([^,]+)/.exec(serverFirst)![1]},p=${randomBytes(32).toString('base64')}`;
    try {
      return a.next(Buffer.from(final)).done;
    } catch (e) {
      if ((e as SwitchyardError).code === ErrorCodes.AUTH_FAILED) return false;
      throw e;
    }
  }

  it('200 made-up names derive no keys (no PBKDF2, no cache entry that would evict real users), and are refused', () => {
    expect(login('app', 'secret', 'secret')).toBe(true);
    const before = scramKeyCacheSize();
    for (let i = 0; i < 200; i++) expect(login(`ghost${i}`, undefined, null)).toBe(false);
    expect(scramKeyCacheSize()).toBe(before);
    // A wrong password for the known user uses its cached keys: no entry either.
    expect(login('app', 'secret', null)).toBe(false);
    expect(scramKeyCacheSize()).toBe(before);
  });
});
