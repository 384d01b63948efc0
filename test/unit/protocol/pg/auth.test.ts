import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { ScramClient, ScramServer, md5Password, saslprep } from '../../../../src/protocol/pg/index.js';
import { ErrorCodes, SwitchyardError } from '../../../../src/errors.js';

const code = (c: string) => expect.objectContaining({ code: c });

/** node-postgres's own SCRAM client: an independent implementation to check ScramServer against. */
interface PgSaslSession {
  response: string;
}
const pgSasl = createRequire(import.meta.url)('pg/lib/crypto/sasl.js') as {
  startSession(mechanisms: string[], stream?: unknown): PgSaslSession;
  continueSession(session: PgSaslSession, password: string, serverData: string, stream?: unknown): Promise<void>;
  finalizeSession(session: PgSaslSession, serverData: string): void;
};

describe('md5Password', () => {
  it('matches the documented formula computed independently, and a literal vector', () => {
    const salt = Buffer.from([0x01, 0x02, 0x03, 0x04]);
    const inner = createHash('md5').update('postgres' + 'postgres').digest('hex');
    expect(md5Password('postgres', 'postgres', salt)).toBe('md5' + createHash('md5').update(inner).update(salt).digest('hex'));
    // Computed once with Python's hashlib (a third implementation).
    expect(md5Password('postgres', 'postgres', salt)).toBe('md568be9ed08db75f318087ab337aaea044');
    expect(md5Password('postgres', 'postgres', Buffer.from([1, 2, 3, 5]))).not.toBe('md568be9ed08db75f318087ab337aaea044');
  });
});

// RFC 7677 section 3: SCRAM-SHA-256 exchange for user "user", password "pencil".
const RFC = {
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

describe('SCRAM-SHA-256 against RFC 7677', () => {
  it('the client produces the RFC messages and accepts the RFC server signature', () => {
    const client = new ScramClient('user', 'pencil', RFC.clientNonce);
    expect(client.clientFirstMessage()).toBe(RFC.clientFirst);
    expect(client.handleServerFirst(RFC.serverFirst)).toBe(RFC.clientFinal);
    expect(() => client.verifyServerFinal(RFC.serverFinal)).not.toThrow();
  });

  it('the client rejects a wrong server signature and a server error', () => {
    const client = new ScramClient('user', 'pencil', RFC.clientNonce);
    client.clientFirstMessage();
    client.handleServerFirst(RFC.serverFirst);
    expect(() => client.verifyServerFinal('v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).toThrow(code(ErrorCodes.BACKEND_AUTH_FAILED));
    expect(() => client.verifyServerFinal('v=AAAA')).toThrow(code(ErrorCodes.BACKEND_AUTH_FAILED));
    expect(() => client.verifyServerFinal('e=invalid-proof')).toThrow(code(ErrorCodes.BACKEND_AUTH_FAILED));
  });

  it('the server, given the RFC salt and nonce, produces the RFC server messages', () => {
    const server = new ScramServer('pencil', { salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), nonce: RFC.serverNonce, iterations: 4096 });
    expect(server.handleClientFirst(RFC.clientFirst)).toBe(RFC.serverFirst);
    expect(server.handleClientFinal(RFC.clientFinal)).toEqual({ ok: true, serverFinal: RFC.serverFinal });
  });
});

describe('ScramClient with ScramServer', () => {
  const login = (serverPassword: string, clientPassword: string) => {
    const server = new ScramServer(serverPassword);
    const client = new ScramClient('app', clientPassword);
    const result = server.handleClientFinal(client.handleServerFirst(server.handleClientFirst(client.clientFirstMessage())));
    if (result.ok) client.verifyServerFinal(result.serverFinal!);
    return result.ok;
  };

  it('agree on the right password and not on a wrong one', () => {
    expect(login('s3cret', 's3cret')).toBe(true);
    expect(login('s3cret', 'wrong')).toBe(false);
    expect(login('s3cret', 's3cret ')).toBe(false);
  });

  it('agree on non-ASCII passwords (both sides apply the same SASLprep)', () => {
    expect(login('pässwörd', 'pässwörd')).toBe(true);
    expect(login('\u2168', 'IX')).toBe(true); // ROMAN NUMERAL NINE normalizes to "IX" under NFKC
    expect(login('pässwörd', 'passwort')).toBe(false);
  });

  it('the server accepts node-postgres\'s SCRAM client ("n=*" user, and the "y" flag it sends over TLS)', async () => {
    for (const stream of [undefined, {}]) {
      const server = new ScramServer('pässwörd');
      const session = pgSasl.startSession(['SCRAM-SHA-256'], stream);
      await pgSasl.continueSession(session, 'pässwörd', server.handleClientFirst(session.response), stream);
      const result = server.handleClientFinal(session.response);
      expect(result.ok).toBe(true);
      expect(() => pgSasl.finalizeSession(session, result.serverFinal!)).not.toThrow();
    }
    const server = new ScramServer('right');
    const session = pgSasl.startSession(['SCRAM-SHA-256']);
    await pgSasl.continueSession(session, 'wrong', server.handleClientFirst(session.response));
    expect(server.handleClientFinal(session.response)).toEqual({ ok: false });
  });

  it('escape , and = in the SCRAM user name', () => {
    expect(new ScramClient('a,b=c', 'x', 'nonce').clientFirstMessage()).toBe('n,,n=a=2Cb=3Dc,r=nonce');
  });

  it('the server keeps one salt per password, so the derived keys are computed once', () => {
    const salt = (s: string) => /s=([^,]+)/.exec(s)![1];
    const a = new ScramServer('same').handleClientFirst('n,,n=,r=abc');
    const b = new ScramServer('same').handleClientFirst('n,,n=,r=abc');
    const c = new ScramServer('other').handleClientFirst('n,,n=,r=abc');
    expect(salt(a)).toBe(salt(b));
    expect(salt(a)).not.toBe(salt(c));
    expect(a).not.toBe(b); // fresh server nonces
  });
});

describe('ScramServer refuses', () => {
  const started = (clientFirst = 'n,,n=,r=abc') => {
    const server = new ScramServer('x', { nonce: 'SERVER' });
    server.handleClientFirst(clientFirst);
    return server;
  };

  it('channel binding and malformed client-first messages', () => {
    expect(() => new ScramServer('x').handleClientFirst('p=tls-server-end-point,,n=,r=abc')).toThrow(code(ErrorCodes.PROTOCOL_VIOLATION));
    for (const bad of ['garbage', 'n,,r=abc', 'n,,n=,r=', 'n,,n=,r=a\u00e9', 'x,,n=,r=abc', 'n,n=,r=abc']) {
      expect(() => new ScramServer('x').handleClientFirst(bad), bad).toThrow(code(ErrorCodes.PROTOCOL_VIOLATION));
    }
  });

  it('a changed nonce, a wrong channel-binding echo and messages out of order', () => {
    expect(() => started().handleClientFinal('c=biws,r=WRONGNONCE,p=AAAA')).toThrow(SwitchyardError);
    expect(() => started().handleClientFinal('c=eSws,r=abcSERVER,p=AAAA')).toThrow(code(ErrorCodes.PROTOCOL_VIOLATION));
    expect(() => started().handleClientFinal('c=biws,r=abcSERVER')).toThrow(code(ErrorCodes.PROTOCOL_VIOLATION));
    expect(() => new ScramServer('x').handleClientFinal('c=biws,r=abc,p=AAAA')).toThrow(code(ErrorCodes.PROTOCOL_VIOLATION));
    expect(() => started().handleClientFirst('n,,n=,r=abc')).toThrow(code(ErrorCodes.PROTOCOL_VIOLATION));
  });

  it('answers ok false (not an exception) to a wrong or truncated proof', () => {
    expect(started().handleClientFinal('c=biws,r=abcSERVER,p=AAAA')).toEqual({ ok: false });
    expect(started().handleClientFinal(`c=biws,r=abcSERVER,p=${Buffer.alloc(32, 7).toString('base64')}`)).toEqual({ ok: false });
  });

  it('accepts "y" (client could bind, server offers no -PLUS) when the final message echoes it', () => {
    const server = new ScramServer('pw');
    const client = new ScramClient('u', 'pw', 'cnonce');
    const first = client.clientFirstMessage().replace(/^n,,/, 'y,,');
    const serverFirst = server.handleClientFirst(first);
    // Our client always says "n"; forge its final message with the "y,," binding to exercise the server.
    const nonce = /r=([^,]+)/.exec(serverFirst)![1];
    expect(() => server.handleClientFinal(`c=biws,r=${nonce},p=AAAA`)).toThrow(code(ErrorCodes.PROTOCOL_VIOLATION));
    expect(server.handleClientFinal(`c=eSws,r=${nonce},p=AAAA`)).toEqual({ ok: false });
  });
});

describe('ScramClient refuses', () => {
  it('a server nonce that does not extend its own, and malformed server-first messages', () => {
    const fresh = () => {
      const c = new ScramClient('u', 'p', 'abc');
      c.clientFirstMessage();
      return c;
    };
    for (const bad of ['r=xyz123,s=AAAA,i=4096', 'r=abc,s=AAAA,i=4096', 'r=abcdef,s=AAAA,i=0', 'r=abcdef,s=AAAA,i=1e3', 'r=abcdef,s=AAAA,i=1000001', 'r=abcdef,i=4096', 'm=ext,r=abcdef,s=AAAA,i=1']) {
      expect(() => fresh().handleServerFirst(bad), bad).toThrow(code(ErrorCodes.PROTOCOL_VIOLATION));
    }
    expect(() => new ScramClient('u', 'p', 'abc').handleServerFirst('r=abcdef,s=AAAA,i=1')).toThrow(SwitchyardError);
    expect(() => new ScramClient('u', 'p', 'abc').verifyServerFinal('v=AAAA')).toThrow(SwitchyardError);
  });
});

describe('saslprep', () => {
  it('leaves ASCII untouched, control characters included (as PostgreSQL does)', () => {
    for (const pw of ['user', 'USER', 'pencil', 'a b', 'tab\there', '\u0007', '']) expect(saslprep(pw)).toBe(pw);
  });

  it('follows the RFC 4013 examples for mapping and normalization', () => {
    expect(saslprep('I\u00adX')).toBe('IX'); // soft hyphen mapped to nothing
    expect(saslprep('\u00aa')).toBe('a'); // NFKC
    expect(saslprep('\u2168')).toBe('IX'); // NFKC
    expect(saslprep('a\u00a0b\u3000c')).toBe('a b c'); // non-ASCII spaces mapped to SPACE
    expect(saslprep('e\u0301')).toBe('\u00e9'); // composed
  });

  it('keeps the raw password when preparation fails, as PostgreSQL does', () => {
    for (const pw of ['\u00aa\u0007', 'x\ue000', '\u00ad', 'a\ufffeb', 'é\u0378', '\ud800é']) expect(saslprep(pw)).toBe(pw);
  });
});
