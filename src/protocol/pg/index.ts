export * from './framing.js';
export * from './messages.js';
export * from './build.js';
export * from './auth.js';
export { PgStreamScanner } from './scanner.js';
