import { describe, expect, it } from 'vitest';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSha256, watchConfigFile } from '../../../src/config/watch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('watchConfigFile', () => {
  it('reports content changes (in-place write, save-by-rename) once each, and not a rewrite of the same bytes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-watch-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'a: 1\n');
    const seen: string[] = [];
    const w = watchConfigFile(file, (await fileSha256(file))!, (sha) => seen.push(sha), { pollMs: 60_000, debounceMs: 50 });
    try {
      writeFileSync(file, 'a: 1\n');
      await sleep(300);
      expect(seen).toHaveLength(0);
      writeFileSync(file, 'a: 2\n');
      await sleep(300);
      expect(seen).toEqual([await fileSha256(file)]);
      writeFileSync(join(dir, 'c.yaml.tmp'), 'a: 3\n');
      renameSync(join(dir, 'c.yaml.tmp'), file);
      await sleep(300);
      expect(seen).toHaveLength(2);
      expect(seen[1]).toBe(await fileSha256(file));
    } finally {
      w.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('falls back to polling', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-watch-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'a: 1\n');
    const seen: string[] = [];
    // A stale initial hash stands for a change the directory watch missed.
    const w = watchConfigFile(file, 'stale', (sha) => seen.push(sha), { pollMs: 100 });
    try {
      await sleep(400);
      expect(seen).toEqual([await fileSha256(file)]);
    } finally {
      w.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
