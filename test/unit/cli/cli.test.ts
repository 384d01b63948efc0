import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The CLI as a user runs it: a real process (src/cli.ts through tsx), its exit
 * code, stdout and stderr.
 */
const root = join(import.meta.dirname, '..', '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'switchyard-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli.ts'), ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('switchyard check', () => {
  it('the example config: exit 0 and "config OK"', () => {
    const r = cli(['check', '-c', 'config/switchyard.example.yaml'], { APP_PASSWORD: 'x', SWITCHYARD_ADMIN_TOKEN: 't' });
    expect(r.err).toBe('');
    expect(r.out.trim()).toBe('config OK');
    expect(r.code).toBe(0);
  });

  it('SWITCHYARD_CONFIG names the file when -c is not given', () => {
    const r = cli(['check'], { SWITCHYARD_CONFIG: 'config/switchyard.example.yaml', APP_PASSWORD: 'x' });
    expect(r.out.trim()).toBe('config OK');
    expect(r.code).toBe(0);
  });

  it('a broken config: exit 1, one line per problem with the YAML line and the key path', () => {
    const text = readFileSync(join(root, 'config', 'switchyard.example.yaml'), 'utf8')
      .replace('port: 5432, weight: 2 }', 'port: 5432, weight: -2 }')
      .replace(/^log:\n/m, 'log:\n  colour: red\n');
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, text);
    const r = cli(['check', '-c', file], { APP_PASSWORD: 'x' });
    expect(r.code).toBe(1);
    const lines = r.out.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(r.out).toMatch(/broken\.yaml:\d+: log\b.*colour/);
    expect(r.out).toMatch(/broken\.yaml:\d+: clusters\[\d+\]\.nodes\[\d+\]\.weight/);
    expect(r.out).not.toMatch(/config OK/);
  });

  it('no file at all: exit 1 and says how to name one', () => {
    const r = cli(['check']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/pass -c FILE or set SWITCHYARD_CONFIG/);
  });

  it('an unset ${VAR} without default: exit 1 naming the variable', () => {
    const text = readFileSync(join(root, 'config', 'switchyard.example.yaml'), 'utf8').replace('${APP_PASSWORD:-app}', '${SY_CLI_TEST_UNSET}');
    const file = join(dir, 'unset.yaml');
    writeFileSync(file, text);
    const r = cli(['check', '-c', file]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/unset\.yaml:\d+: .*SY_CLI_TEST_UNSET/);
  });
});

describe('switchyard classify', () => {
  it('prints read or write with the reason, one line per statement', () => {
    const r = cli(['classify', 'SELECT 1', 'SELECT * FROM t FOR UPDATE', "SELECT 'DELETE'"]);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n').map((l) => l.split('\t'));
    expect(lines.map((l) => l[0])).toEqual(['read', 'write', 'read']);
    expect(lines[1]![1]).toMatch(/lock/);
    expect(lines[1]![2]).toBe('SELECT * FROM t FOR UPDATE');
  });

  it('--json gives {"sql","class","reason"} one object a line; --dialect mysql reads MySQL', () => {
    const r = cli(['classify', '--json', '--dialect', 'mysql', 'SELECT 1 INTO @v', 'SHOW TABLES', '/*! DELETE FROM t */']);
    expect(r.code).toBe(0);
    const objs = r.out.trim().split('\n').map((l) => JSON.parse(l) as { sql: string; class: string; reason: string });
    expect(objs.map((o) => [o.sql, o.class])).toEqual([
      ['SELECT 1 INTO @v', 'write'],
      ['SHOW TABLES', 'read'],
      ['/*! DELETE FROM t */', 'write'],
    ]);
    for (const o of objs) expect(typeof o.reason).toBe('string');
  });

  it('--write-function adds a write function', () => {
    const plain = cli(['classify', '--json', 'SELECT audit_log(1)']);
    const extra = cli(['classify', '--json', '--write-function', 'audit_log', '--', 'SELECT audit_log(1)']);
    expect(JSON.parse(plain.out).class).toBe('read');
    expect(JSON.parse(extra.out).class).toBe('write');
  });

  it('a wrong dialect is refused with exit 1', () => {
    const r = cli(['classify', '--dialect', 'oracle', 'SELECT 1']);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/oracle/);
  });
});

describe('--version and --help', () => {
  it('--version prints the package version', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    const r = cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe(pkg.version);
  });

  it('--help lists every subcommand', () => {
    const r = cli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['start', 'check', 'classify', 'demo']) expect(r.out).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'));
  });
});
