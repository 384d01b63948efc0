import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { BackendTlsConfig } from '../config/types.js';

/**
 * node:tls client options for a backend connection under backend_tls (both
 * protocols mean the same by each mode, as PostgreSQL's sslmode does):
 *   - verify-full checks the chain against `ca` (or the system's CAs without one) and the
 *     node's name or IP against the certificate;
 *   - require and prefer encrypt without checking either.
 * SNI (servername) only for a host name: RFC 6066 forbids IP literals there. The CA file
 * is read per connection, so a replaced file applies to the next one (a few hundred bytes).
 * Throws the fs error when `ca` cannot be read.
 */
export function backendTlsOptions(socket: net.Socket, host: string, cfg: BackendTlsConfig): tls.ConnectionOptions {
  const verify = cfg.mode === 'verify-full';
  return {
    socket,
    host,
    servername: net.isIP(host) ? undefined : host,
    ca: cfg.ca ? readFileSync(cfg.ca) : undefined,
    rejectUnauthorized: verify,
    checkServerIdentity: verify ? tls.checkServerIdentity : () => undefined,
  };
}
