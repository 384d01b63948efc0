import { ErrorCodes, SwitchyardError } from '../../errors.js';
import { Cap } from './constants.js';
import { PayloadReader, lenencBytes } from './lenenc.js';

/** Initial Handshake Packet, protocol version 10. */
export interface HandshakeV10 {
  serverVersion: string;
  connectionId: number;
  /** The full 20-byte nonce (both parts joined). */
  nonce: Buffer;
  capabilities: number;
  charset: number;
  status: number;
  authPlugin: string;
}

export function buildHandshakeV10(h: HandshakeV10): Buffer {
  const fixed = Buffer.alloc(4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10);
  let o = 0;
  fixed.writeUInt32LE(h.connectionId >>> 0, o); o += 4;
  h.nonce.copy(fixed, o, 0, 8); o += 8;
  fixed[o++] = 0; // filler
  fixed.writeUInt16LE(h.capabilities & 0xffff, o); o += 2;
  fixed[o++] = h.charset;
  fixed.writeUInt16LE(h.status, o); o += 2;
  fixed.writeUInt16LE((h.capabilities >>> 16) & 0xffff, o); o += 2;
  fixed[o++] = h.nonce.length + 1; // auth-plugin-data length incl. trailing NUL
  return Buffer.concat([
    Buffer.from([10]),
    Buffer.from(h.serverVersion + '\0', 'utf8'),
    fixed,
    h.nonce.subarray(8),
    Buffer.from([0]),
    Buffer.from(h.authPlugin + '\0', 'utf8'),
  ]);
}

export function parseHandshakeV10(payload: Buffer): HandshakeV10 {
  const r = new PayloadReader(payload);
  const version = r.u8();
  if (version !== 10) throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, `mysql handshake version ${version}`);
  const serverVersion = r.nulString();
  const connectionId = r.u32();
  const part1 = r.bytes(8);
  r.u8();
  let capabilities = r.u16();
  const charset = r.u8();
  const status = r.u16();
  capabilities |= r.u16() << 16;
  capabilities >>>= 0;
  const dataLen = r.u8();
  r.bytes(10); // reserved (MariaDB keeps extended capabilities here; not needed)
  let part2: Buffer = Buffer.alloc(0);
  if (capabilities & Cap.SECURE_CONNECTION) {
    part2 = r.bytes(Math.max(13, dataLen - 8));
    if (part2[part2.length - 1] === 0) part2 = part2.subarray(0, part2.length - 1);
  }
  let authPlugin = 'mysql_native_password';
  if (capabilities & Cap.PLUGIN_AUTH && r.remaining > 0) {
    const rest = r.rest();
    const nul = rest.indexOf(0);
    authPlugin = (nul < 0 ? rest : rest.subarray(0, nul)).toString('utf8');
  }
  return { serverVersion, connectionId, nonce: Buffer.concat([part1, part2]), capabilities, charset, status, authPlugin };
}

/** HandshakeResponse41 (or, when the payload is only 32 bytes with SSL set, an SSLRequest). */
export interface HandshakeResponse {
  capabilities: number;
  maxPacketSize: number;
  charset: number;
  user: string;
  authResponse: Buffer;
  database: string | null;
  authPlugin: string | null;
  attrs: Buffer | null;
}

/** SSLRequest: the first 32 bytes of a response with CLIENT_SSL, sent before the TLS handshake. */
export function isSslRequest(payload: Buffer): boolean {
  return payload.length === 32 && (payload.readUInt32LE(0) & Cap.SSL) !== 0;
}

export function parseHandshakeResponse(payload: Buffer): HandshakeResponse {
  const r = new PayloadReader(payload);
  const capabilities = r.u32() >>> 0;
  if (!(capabilities & Cap.PROTOCOL_41)) {
    throw new SwitchyardError(ErrorCodes.PROTOCOL_VIOLATION, 'mysql client without CLIENT_PROTOCOL_41');
  }
  const maxPacketSize = r.u32();
  const charset = r.u8();
  r.bytes(23);
  const user = r.nulString();
  let authResponse: Buffer;
  if (capabilities & Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA) authResponse = r.lenencBytes();
  else if (capabilities & Cap.SECURE_CONNECTION) authResponse = r.bytes(r.u8());
  else authResponse = r.nulBytes();
  let database: string | null = null;
  if (capabilities & Cap.CONNECT_WITH_DB && r.remaining > 0) database = r.nulString();
  let authPlugin: string | null = null;
  if (capabilities & Cap.PLUGIN_AUTH && r.remaining > 0) authPlugin = r.nulString();
  let attrs: Buffer | null = null;
  if (capabilities & Cap.CONNECT_ATTRS && r.remaining > 0) attrs = r.lenencBytes();
  return { capabilities, maxPacketSize, charset, user, authResponse, database, authPlugin, attrs };
}

export function buildHandshakeResponse(h: HandshakeResponse): Buffer {
  const fixed = Buffer.alloc(32);
  fixed.writeUInt32LE(h.capabilities >>> 0, 0);
  fixed.writeUInt32LE(h.maxPacketSize >>> 0, 4);
  fixed[8] = h.charset;
  const parts: Buffer[] = [fixed, Buffer.from(h.user + '\0', 'utf8')];
  if (h.capabilities & Cap.PLUGIN_AUTH_LENENC_CLIENT_DATA) parts.push(lenencBytes(h.authResponse));
  else parts.push(Buffer.from([h.authResponse.length]), h.authResponse);
  if (h.capabilities & Cap.CONNECT_WITH_DB) parts.push(Buffer.from((h.database ?? '') + '\0', 'utf8'));
  if (h.capabilities & Cap.PLUGIN_AUTH) parts.push(Buffer.from((h.authPlugin ?? '') + '\0', 'utf8'));
  if (h.capabilities & Cap.CONNECT_ATTRS) parts.push(lenencBytes(h.attrs ?? Buffer.alloc(0)));
  return Buffer.concat(parts);
}

/** AuthSwitchRequest: 0xfe, plugin name NUL, plugin data. */
export function buildAuthSwitch(plugin: string, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0xfe]), Buffer.from(plugin + '\0', 'utf8'), data, Buffer.from([0])]);
}

export function parseAuthSwitch(payload: Buffer): { plugin: string; data: Buffer; rawData: Buffer } {
  const r = new PayloadReader(payload, 1);
  const plugin = r.nulString();
  const rawData = r.rest();
  let data = rawData;
  if (data.length > 0 && data[data.length - 1] === 0) data = data.subarray(0, data.length - 1);
  return { plugin, data, rawData };
}
