import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { DEFAULTS } from '../../../src/config/schema.js';
import { repoRoot } from './fixtures.js';

/** DEFAULTS flattened to the key names docs/configuration.md uses: `pool.size`, `nodes[].weight`. */
function flattenDefaults(value: unknown, prefix: string, out = new Map<string, string>()): Map<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenDefaults(v, `${prefix}${k === 'node' ? 'nodes[]' : k}.`, out);
  } else {
    const key = prefix.slice(0, -1);
    out.set(key, Array.isArray(value) ? '[]' : value === '' ? "''" : String(value));
  }
  return out;
}

/** `| \`pool.size\` | integer ≥ 1 | \`20\` | ...` -> pool.size => 20, for every reference-table row with a code default. */
function documentedDefaults(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of markdown.split('\n')) {
    const cells = line.split(' | ').map((c) => c.trim());
    const key = /^\| `([^`]+)`$/.exec(cells[0] ?? '')?.[1];
    const dflt = /^`([^`]*)`$/.exec(cells[2] ?? '')?.[1];
    if (key !== undefined && dflt !== undefined) out.set(key, dflt);
  }
  return out;
}

describe('docs/configuration.md', () => {
  const markdown = readFileSync(new URL('docs/configuration.md', repoRoot), 'utf8');

  it('lists every default exactly as DEFAULTS has it', () => {
    const documented = documentedDefaults(markdown);
    const defaults = flattenDefaults(DEFAULTS, '');
    expect(defaults.size).toBeGreaterThan(20);
    for (const [key, value] of defaults) expect(documented.get(key), key).toBe(value);
  });
});
