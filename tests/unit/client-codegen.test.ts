import fs from 'node:fs';
import path from 'node:path';
import { generate, loadCodegenConfig } from '@graphql-codegen/cli';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');

describe('the typed client', () => {
  it('is what `npm run codegen` makes from schema.graphql and the operations (regenerate after changing either)', async () => {
    const { config } = await loadCodegenConfig({ configFilePath: path.join(root, 'codegen.yml') });
    const files = (await generate({ ...config, cwd: root, silent: true }, false)) as { filename: string; content: string }[];
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      expect(fs.readFileSync(path.join(root, file.filename), 'utf8'), file.filename).toBe(file.content);
    }
  });
});
