import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/observability/logger.js';

/** A destination that keeps what pino wrote, line by line. */
function sink(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const text = () => chunks.join('');
  return { stream, text, lines: () => text().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logger', () => {
  it('writes JSON lines at or above the configured level only', () => {
    const s = sink();
    const log = createLogger({ level: 'warn', format: 'json', destination: s.stream });
    log.info('not written');
    log.warn({ node: 'pg1' }, 'node is down');
    log.error('failed');
    const lines = s.lines();
    expect(lines.map((l) => l.msg)).toEqual(['node is down', 'failed']);
    expect(lines[0]).toMatchObject({ level: 40, node: 'pg1', pid: process.pid });
  });

  it('never writes a password, token or secret, wherever it sits in a logged object', () => {
    const s = sink();
    const log = createLogger({ level: 'info', format: 'json', destination: s.stream });
    log.info({ password: 'hunter2-a', user: { name: 'app', password: 'hunter2-b' }, config: { users: [{ name: 'x', password: 'hunter2-c' }] } }, 'login');
    log.info({ admin: { token: 'tok-secret-1' }, token: 'tok-secret-2', secret: 'tok-secret-3' }, 'config');
    log.info({ clusters: [{ users: [{ name: 'app', password: 'hunter2-d' }] }] }, 'reload');
    const text = s.text();
    expect(text).not.toMatch(/hunter2|tok-secret/);
    expect(text.match(/\[redacted\]/g)?.length).toBe(7);
    // What is not secret stays.
    expect(s.lines()[0]).toMatchObject({ user: { name: 'app' } });
  });

  it('a child logger (one per connection) redacts the same way', () => {
    const s = sink();
    const log = createLogger({ level: 'info', format: 'json', destination: s.stream }).child({ session: 7 });
    log.info({ params: { user: 'app', password: 'hunter2-e' } }, 'startup');
    expect(s.text()).not.toMatch(/hunter2/);
    expect(s.lines()[0]).toMatchObject({ session: 7, params: { user: 'app', password: '[redacted]' } });
  });

  it('format: pretty writes readable text to stderr (through pino-pretty), not JSON, and still redacts', () => {
    const root = join(import.meta.dirname, '..', '..', '..');
    const script = `
      import { createLogger } from './src/observability/logger.ts';
      const log = createLogger({ level: 'info', format: 'pretty' });
      log.info({ node: 'pg2', password: 'hunter2-f' }, 'pretty line');
      log.flush?.();
      setTimeout(() => process.exit(0), 300);
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/INFO.*pretty line/);
    expect(r.stderr).toMatch(/node: "pg2"/);
    expect(r.stderr).not.toMatch(/^\{"level"/m);
    expect(r.stderr).not.toMatch(/hunter2/);
  });
});
