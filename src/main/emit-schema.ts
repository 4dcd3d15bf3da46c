import fs from 'node:fs/promises';
import { printAppSchema } from '../schema/build-schema.js';

/** `npm run schema`: writes the served schema to schema.graphql (committed; a test checks it is current). */
await fs.writeFile(new URL('../../schema.graphql', import.meta.url), await printAppSchema());
process.stdout.write('wrote schema.graphql\n');
