import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type YAMLError } from 'yaml';
import type { z } from 'zod';
import { configSchema, formatKeyPath } from './schema.js';
import { expandEnv, type Env } from './env.js';
import type { Config } from './types.js';

export interface ConfigProblem {
  /** Key path such as clusters[0].nodes[1].port ('' for the whole file). */
  path: string;
  /** 1-based YAML line of the key (or of its nearest existing parent). */
  line?: number;
  message: string;
}

export type LoadResult = { ok: true; config: Config; sha256: string } | { ok: false; problems: ConfigProblem[] };

type PathPart = string | number;

/**
 * Parses and validates a config text:
 *   1. YAML (syntax errors and duplicate keys are problems, with their line);
 *   2. ${VAR} expansion in every string scalar, after parsing, so a value can
 *      never inject YAML and lines stay right;
 *   3. the strict zod schema (unknown keys, types, units, defaults) and the
 *      semantic checks (unique names and addresses, references).
 * Every problem carries its key path and YAML line. `file` is accepted for
 * callers that have one; problems do not repeat it (formatProblem adds it).
 */
export function loadConfigText(text: string, opts: { env: Env; file?: string }): LoadResult {
  const lines = new LineCounter();
  const doc = parseDocument(shieldReferences(text), { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const lineOfPath = (path: readonly PathPart[]) => lineOf(doc, lines, path);
  if (doc.errors.length > 0) return { ok: false, problems: yamlProblems(doc, lines) };

  // Expansion problems do not stop here: the schema still reports the rest of
  // the file in the same run (a value that failed to expand stays as written).
  const expansion = expandScalars(doc, opts.env, lineOfOffset(lines));

  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (e) {
    // yaml refuses documents whose aliases expand beyond its limit ("billion laughs").
    return { ok: false, problems: [{ path: '', line: 1, message: (e as Error).message }] };
  }
  let result = configSchema.safeParse(raw, { reportInput: true });
  // An env var where a number belongs (`port: ${PG_PORT:-5432}`) expands to a
  // string; give such values one more try as numbers. Only expanded values, so a
  // literal `port: "5432"` in the file stays an error.
  if (!result.success && coerceExpandedNumbers(raw, result.error.issues, expansion.numeric)) {
    result = configSchema.safeParse(raw, { reportInput: true });
  }
  if (!result.success || expansion.problems.length > 0) {
    const envPaths = new Set(expansion.problems.map((p) => p.path));
    const schemaProblems = result.success ? [] : result.error.issues.flatMap((issue) => issueProblems(issue, lineOfPath));
    const problems = [...expansion.problems, ...schemaProblems.filter((p) => !envPaths.has(p.path))];
    return { ok: false, problems: problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0)) };
  }
  return { ok: true, config: result.data, sha256: createHash('sha256').update(text).digest('hex') };
}

/** Reads and loads a file; a file that cannot be read is a problem, not a throw. */
export async function loadConfigFile(file: string, env: Env): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    return { ok: false, problems: [{ path: '', message: `cannot read config file: ${(e as Error).message}` }] };
  }
  return loadConfigText(text, { env, file });
}

/** `switchyard.yaml:14: clusters[0].nodes[1].port: must be between 1 and 65535` */
export function formatProblem(p: ConfigProblem, file = 'config'): string {
  const where = p.line ? `${file}:${p.line}` : file;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

/**
 * Every duplicate key, and the first syntax error only: the parser's later
 * errors mostly follow from the first ("Implicit keys need to be on a single line").
 */
function yamlProblems(doc: Document, lines: LineCounter): ConfigProblem[] {
  const duplicates = doc.errors.filter((e) => e.code === 'DUPLICATE_KEY');
  const firstSyntaxError = doc.errors.find((e) => e.code !== 'DUPLICATE_KEY');
  return [...(firstSyntaxError ? [firstSyntaxError] : []), ...duplicates].map((e) => yamlProblem(doc, lines, e));
}

function yamlProblem(doc: Document, lines: LineCounter, e: YAMLError): ConfigProblem {
  const offset = e.pos[0];
  const line = lines.linePos(offset).line;
  if (e.code === 'DUPLICATE_KEY') {
    // A duplicate key sits in a well-formed document, so its key path is known.
    const path = pathAtOffset(doc, offset);
    return { path: formatKeyPath(path), line, message: `duplicate key "${String(path[path.length - 1] ?? '')}" (keys must be unique)` };
  }
  if (e.code === 'MULTIPLE_DOCS') return { path: '', line, message: 'a config file holds one YAML document (found a second "---")' };
  // The message repeats the position ("... at line 2, column 1:"); the problem has its own line.
  return { path: '', line, message: unshield(e.message.split('\n')[0]!).replace(/ at line \d+, column \d+:?$/, '') };
}

/** Expands ${VAR} in every string value (never in keys), in place in the document. */
function expandScalars(doc: Document, env: Env, lineAt: (offset: number | undefined) => number | undefined) {
  const problems: ConfigProblem[] = [];
  const numeric: PathPart[][] = [];
  const walk = (node: unknown, path: PathPart[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        // Keys are never expanded, but their shielded braces go back (an unknown key reads as written).
        if (isScalar(pair.key) && typeof pair.key.value === 'string') pair.key.value = unshield(pair.key.value);
        walk(pair.value, [...path, keyName(pair.key)]);
      }
    } else if (isSeq(node)) node.items.forEach((item, i) => walk(item, [...path, i]));
    else if (isScalar(node) && typeof node.value === 'string') {
      const r = expandEnv(unshield(node.value), env);
      if (!r.ok) {
        problems.push({ path: formatKeyPath(path), line: lineAt(node.range?.[0]), message: r.message });
        node.value = unshield(node.value);
      } else {
        node.value = r.value; // also when only `$$` escapes were undone
        if (r.expanded && /^-?\d+(\.\d+)?$/.test(r.value)) numeric.push(path);
      }
    }
  };
  walk(doc.contents, []);
  return { problems, numeric };
}

/** Turns expanded numeric strings into numbers where the schema wanted a number; true if any changed. */
function coerceExpandedNumbers(raw: unknown, issues: z.core.$ZodIssue[], numeric: PathPart[][]): boolean {
  const wanted = new Set(numeric.map((p) => formatKeyPath(p)));
  let changed = false;
  for (const issue of issues) {
    if (issue.code !== 'invalid_type' || typeof issue.input !== 'string') continue;
    const path = issue.path.filter((p): p is PathPart => typeof p !== 'symbol');
    if (!wanted.has(formatKeyPath(path)) || path.length === 0) continue;
    const parent = valueAt(raw, path.slice(0, -1));
    if (parent && typeof parent === 'object') {
      (parent as Record<PathPart, unknown>)[path[path.length - 1]!] = Number(issue.input);
      changed = true;
    }
  }
  return changed;
}

function valueAt(raw: unknown, path: readonly PathPart[]): unknown {
  let v = raw;
  for (const p of path) v = v && typeof v === 'object' ? (v as Record<PathPart, unknown>)[p] : undefined;
  return v;
}

/** One problem per zod issue (one per key for unknown keys), worded for a config author. */
function issueProblems(issue: z.core.$ZodIssue, lineOfPath: (path: readonly PathPart[]) => number | undefined): ConfigProblem[] {
  const path = issue.path.filter((p): p is PathPart => typeof p !== 'symbol');
  const at = (p: PathPart[], message: string): ConfigProblem => ({ path: formatKeyPath(p), line: lineOfPath(p), message });
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => at([...path, key], `unknown key "${key}"`));
    case 'invalid_type': {
      if (issue.input === undefined) return [at(path, 'is required')];
      const secret = SECRET_KEYS.has(String(path[path.length - 1]));
      const got = secret ? `a ${typeof issue.input}` : describeInput(issue.input);
      const hint = issue.expected === 'string' && ['number', 'boolean'].includes(typeof issue.input) ? ' (quote it)' : '';
      return [at(path, `expected ${TYPE_WORDS[issue.expected] ?? issue.expected}, got ${got}${hint}`)];
    }
    case 'invalid_value':
      return [at(path, `must be ${issue.values.map((v) => String(v)).join(' | ')} (got ${describeInput(issue.input)})`)];
    default:
      return [at(path, issue.message)];
  }
}

/** Keys whose values are never echoed in a problem (they end up in terminals and logs). */
const SECRET_KEYS = new Set(['password', 'token']);

const TYPE_WORDS: Record<string, string> = { int: 'a whole number', number: 'a number', string: 'a string', object: 'a map', array: 'a list' };

function describeInput(v: unknown): string {
  if (v === null) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return JSON.stringify(v);
}

function keyName(key: unknown): string {
  return unshield(String(isScalar(key) ? key.value : key));
}

/*
 * `{` and `}` end a plain scalar inside a YAML flow collection, so the
 * contract's own `- { name: app, password: ${APP_PASSWORD} }` would not parse.
 * Before parsing, the braces of each `${...}` become two private-use characters
 * (one UTF-16 unit each, so every offset and line stays the same); expandScalars
 * puts them back in each scalar before expanding it.
 */
const OPEN = '\uE000';
const CLOSE = '\uE001';

function shieldReferences(text: string): string {
  return text.replace(/\$\$|\$\{([^{}\n]*)\}/g, (ref: string, body: string | undefined) => (body === undefined ? ref : `$${OPEN}${body}${CLOSE}`));
}

function unshield(text: string): string {
  return text.replaceAll(OPEN, '{').replaceAll(CLOSE, '}');
}

function lineOfOffset(lines: LineCounter) {
  return (offset: number | undefined) => (offset === undefined ? undefined : lines.linePos(offset).line);
}

/** The line of the deepest node on `path` that exists in the document: the key's line for a map entry. */
function lineOf(doc: Document, lines: LineCounter, path: readonly PathPart[]): number | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined = (doc.contents as { range?: number[] } | null)?.range?.[0];
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => keyName(it.key) === String(part));
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
  // An empty document has no node at all; its problems belong to line 1.
  return lineOfOffset(lines)(offset) ?? 1;
}

/** The key path of the deepest map key or sequence item whose source contains `offset`. */
function pathAtOffset(doc: Document, offset: number): PathPart[] {
  const path: PathPart[] = [];
  const within = (n: unknown) => {
    const r = (n as { range?: [number, number, number] } | null)?.range;
    return r !== undefined && offset >= r[0] && offset < r[2];
  };
  let node: unknown = doc.contents;
  // Bounded by the document's depth: each step descends one level or stops.
  for (;;) {
    if (isMap(node)) {
      const pair = node.items.find((it) => within(it.key) || within(it.value));
      if (!pair) break;
      path.push(keyName(pair.key));
      if (within(pair.key)) break;
      node = pair.value;
    } else if (isSeq(node)) {
      const i = node.items.findIndex(within);
      if (i < 0) break;
      path.push(i);
      node = node.items[i];
    } else break;
  }
  return path;
}
