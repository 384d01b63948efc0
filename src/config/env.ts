/**
 * `${VAR}` and `${VAR:-default}` expansion in one string; `$$` is a literal `$`.
 * A variable that is unset (or empty, for the `:-` form, as in the shell) takes
 * the default; an unset variable without a default is an error naming it.
 * A `$` not followed by `{` or `$` is kept as it is, so `cost $5` needs no escape.
 * load.ts calls this once per YAML scalar, after parsing, so a value can never
 * inject YAML structure.
 */
export type Env = Record<string, string | undefined>;

export type ExpandResult = { ok: true; value: string; expanded: boolean } | { ok: false; message: string };

export function expandEnv(text: string, env: Env): ExpandResult {
  let out = '';
  let expanded = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    const next = text[i + 1];
    if (ch !== '$' || (next !== '$' && next !== '{')) {
      out += ch;
      i++;
      continue;
    }
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    const end = text.indexOf('}', i + 2);
    if (end < 0) return { ok: false, message: `unterminated "\${" in "${text}" (write $$ for a literal $)` };
    const body = text.slice(i + 2, end);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s.exec(body);
    if (!m) return { ok: false, message: `invalid variable reference "\${${body}}" (want \${NAME} or \${NAME:-default})` };
    const name = m[1]!;
    const fallback = m[2];
    // Nesting would need a real parser; refuse it rather than half-expand it.
    if (fallback?.includes('${')) return { ok: false, message: `nested references are not supported in the default of \${${name}}` };
    const value = env[name];
    if (fallback !== undefined) out += value === undefined || value === '' ? fallback : value;
    else if (value === undefined) return { ok: false, message: `environment variable ${name} is not set (use \${${name}:-default} for a default)` };
    else out += value;
    expanded = true;
    i = end + 1;
  }
  return { ok: true, value: out, expanded };
}
