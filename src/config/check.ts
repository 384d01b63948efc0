import { formatProblem, loadConfigFile } from './load.js';

/** `switchyard check`: prints `config OK` (returns 0) or one line per problem (returns 1). */
export async function runCheck(file: string, env: Record<string, string | undefined>, out: (line: string) => void): Promise<number> {
  const r = await loadConfigFile(file, env);
  if (r.ok) {
    out('config OK');
    return 0;
  }
  for (const p of r.problems) out(formatProblem(p, file));
  return 1;
}
