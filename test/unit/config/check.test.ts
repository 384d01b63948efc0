import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCheck } from '../../../src/config/check.js';
import { loadConfigFile } from '../../../src/config/load.js';
import { minimalYaml } from './fixtures.js';

describe('runCheck (switchyard check -c FILE)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-check-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const check = async (name: string, text: string | null, env: Record<string, string> = {}) => {
    const file = join(dir, name);
    if (text !== null) writeFileSync(file, text);
    const out: string[] = [];
    const code = await runCheck(file, env, (line) => out.push(line));
    return { file, code, out };
  };

  it('prints config OK and returns 0 for a valid file', async () => {
    const { code, out } = await check('ok.yaml', minimalYaml);
    expect(code).toBe(0);
    expect(out).toEqual(['config OK']);
  });

  it('prints one line per problem with file, line and key path, and returns 1', async () => {
    const text = minimalYaml.replace('port: 5433', 'port: 70000').replace('protocol: postgres', 'protocol: pg');
    const { file, code, out } = await check('bad.yaml', text);
    expect(code).toBe(1);
    expect(out).toEqual([
      `${file}:3: clusters[0].protocol: must be postgres | mysql (got "pg")`,
      `${file}:7: clusters[0].nodes[1].port: must be between 1 and 65535`,
    ]);
  });

  it('reads the environment it is given', async () => {
    const text = minimalYaml.replace('password: secret', 'password: ${APP_PASSWORD}');
    expect((await check('env.yaml', text, { APP_PASSWORD: 'x' })).code).toBe(0);
    const { file, code, out } = await check('env.yaml', text, {});
    expect(code).toBe(1);
    expect(out).toEqual([`${file}:9: clusters[0].users[0].password: environment variable APP_PASSWORD is not set (use \${APP_PASSWORD:-default} for a default)`]);
  });

  it('reports a missing file as a problem, not a throw', async () => {
    const { file, code, out } = await check('none.yaml', null);
    expect(code).toBe(1);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read config file: ENOENT`));
    const loaded = await loadConfigFile(file, {});
    expect(loaded.ok).toBe(false);
  });
});
