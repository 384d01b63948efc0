/**
 * `${VAR}` and `${VAR:-default}` expansion in one string; `$$` is a literal `$`.
 * A variable that is unset (or empty, for the `:-` form) takes the default; an
 * unset variable without a default is an error naming it.
 */
export function expandEnv(text: string, env: Record<string, string | undefined>): { ok: true; value: string } | { ok: false; message: string } {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch !== '$') {
      out += ch;
      i++;
      continue;
    }
    if (text[i + 1] === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (text[i + 1] !== '{') {
      out += ch;
      i++;
      continue;
    }
    const end = text.indexOf('}', i + 2);
    if (end < 0) return { ok: false, message: `unterminated \${ in "${text}"` };
    const body = text.slice(i + 2, end);
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s.exec(body);
    if (!m) return { ok: false, message: `invalid variable reference \${${body}}` };
    const name = m[1]!;
    const value = env[name];
    if (m[2] !== undefined) out += value === undefined || value === '' ? m[2] : value;
    else if (value === undefined) return { ok: false, message: `environment variable ${name} is not set (use \${${name}:-default} for a default)` };
    else out += value;
    i = end + 1;
  }
  return { ok: true, value: out };
}
