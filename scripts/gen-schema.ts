// Writes config/switchyard.schema.json from the zod schema: npx tsx scripts/gen-schema.ts
import { writeFileSync } from 'node:fs';
import { configJsonSchema } from '../src/config/json-schema.js';

writeFileSync(new URL('../config/switchyard.schema.json', import.meta.url), configJsonSchema());
console.log('wrote config/switchyard.schema.json');
