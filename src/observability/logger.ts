import { pino, type Logger, type LoggerOptions } from 'pino';

export type LogFormat = 'json' | 'pretty';
export type { Logger };

/**
 * Keys whose values are never written to a log, wherever they appear in an
 * object that is logged (config dumps, connection parameters, errors).
 */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  '*.*.*.password',
  'users[*].password',
  '*.users[*].password',
  '*.*.users[*].password',
  'clusters[*].users[*].password',
  '*.clusters[*].users[*].password',
  'token',
  'admin.token',
  '*.token',
  '*.*.token',
  'secret',
  '*.secret',
  '*.*.secret',
];

export function createLogger(opts: { level: string; format: LogFormat; destination?: NodeJS.WritableStream }): Logger {
  const options: LoggerOptions = {
    level: opts.level,
    base: { pid: process.pid },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  if (opts.format === 'pretty') {
    // pino-pretty runs in a worker thread so the hot path never formats text.
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: false, destination: 2 } } });
  }
  return opts.destination ? pino(options, opts.destination as never) : pino(options, pino.destination(2));
}
