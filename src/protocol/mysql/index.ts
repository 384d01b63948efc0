export * from './constants.js';
export * from './lenenc.js';
export * from './framing.js';
export * from './packets.js';
export * from './handshake.js';
export * from './auth.js';
export * from './scanner.js';
export * from './caching-sha2.js';
