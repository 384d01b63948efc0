import { z } from 'zod';
import { configSchema } from './schema.js';

/**
 * The JSON Schema of the config file (input side: durations and sizes as
 * strings), for editors. config/switchyard.schema.json is generated from this
 * by scripts/gen-schema.ts and a test fails when the committed file is stale.
 */
export function configJsonSchema(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  schema['title'] = 'switchyard configuration';
  return `${JSON.stringify(schema, null, 2)}\n`;
}
