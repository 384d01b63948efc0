import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { configSchema, toConfig } from './schema.js';
import { expandEnv } from './env.js';
import type { Config } from './types.js';

export interface ConfigProblem {
  /** Key path such as clusters[0].nodes[1].port ('' for the whole file). */
  path: string;
  /** 1-based YAML line of the key (or of its nearest existing parent). */
  line?: number;
  message: string;
}

export type LoadResult = { ok: true; config: Config; sha256: string } | { ok: false; problems: ConfigProblem[] };

type Env = Record<string, string | undefined>;
type PathPart = string | number;

/**
 * Parses and validates a config text:
 *   1. YAML (syntax errors and duplicate keys are problems, with their line);
 *   2. ${VAR} expansion in every string scalar, after parsing, so a value can
 *      never inject YAML and lines stay right;
 *   3. the strict zod schema (unknown keys, types, units, defaults);
 *   4. the semantic checks (unique names and addresses, references).
 * Every problem carries its key path and YAML line.
 */
export function loadConfigText(text: string, opts: { env: Env; file?: string }): LoadResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => ({ path: '', line: e.linePos?.[0]?.line ?? lines.linePos(e.pos[0]).line, message: e.message.split('\n')[0]! })),
    };
  }
  const raw: unknown = doc.toJS() ?? {};
  const problems: ConfigProblem[] = [];
  const expanded = expandTree(raw, [], opts.env, (path, message) => problems.push({ path: formatPath(path), line: lineOf(doc, lines, path), message }));
  if (problems.length > 0) return { ok: false, problems };
  const result = configSchema.safeParse(expanded);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.filter((p): p is PathPart => typeof p === 'string' || typeof p === 'number');
      let message = issue.message;
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) problems.push({ path: formatPath([...path, key]), line: lineOf(doc, lines, [...path, key]), message: `unknown key "${key}"` });
        continue;
      }
      if (issue.code === 'invalid_type' && message.includes('received undefined')) message = 'is required';
      problems.push({ path: formatPath(path), line: lineOf(doc, lines, path), message });
    }
    return { ok: false, problems };
  }
  return { ok: true, config: toConfig(result.data), sha256: createHash('sha256').update(text).digest('hex') };
}

export async function loadConfigFile(file: string, env: Env): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    return { ok: false, problems: [{ path: '', message: `cannot read config file: ${(e as Error).message}` }] };
  }
  return loadConfigText(text, { env, file });
}

/** `file:14: clusters[0].nodes[1].port: must be between 1 and 65535` */
export function formatProblem(p: ConfigProblem, file = 'config'): string {
  const where = p.line ? `${file}:${p.line}` : file;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

export function formatPath(path: readonly PathPart[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

function expandTree(value: unknown, path: PathPart[], env: Env, problem: (path: PathPart[], message: string) => void): unknown {
  if (typeof value === 'string') {
    const r = expandEnv(value, env);
    if (!r.ok) {
      problem(path, r.message);
      return value;
    }
    return r.value;
  }
  if (Array.isArray(value)) return value.map((v, i) => expandTree(v, [...path, i], env, problem));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandTree(v, [...path, k], env, problem);
    return out;
  }
  return value;
}

/** The line of the deepest node on `path` that exists in the document. */
function lineOf(doc: Document, lines: LineCounter, path: readonly PathPart[]): number | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined = (doc.contents as { range?: number[] } | null)?.range?.[0];
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => (isScalar(it.key) ? it.key.value : it.key) === part);
      if (!pair) break;
      offset = (pair.key as { range?: number[] } | null)?.range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof part === 'number') {
      const item = node.items[part] as { range?: number[] } | undefined;
      if (!item) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else break;
  }
  return offset === undefined ? undefined : lines.linePos(offset).line;
}
