export * from './framing.js';
export * from './messages.js';
export * from './build.js';
export * from './auth.js';
export { saslprep } from './saslprep.js';
export { PgStreamScanner } from './scanner.js';
