// Entry of the ONNX Runtime worker thread. A worker does not always inherit the
// parent's TypeScript loader (vitest's workers do not; `tsx` does), so the
// TypeScript worker is imported through tsx's scoped API unless a compiled
// sibling exists.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('./ort-worker.js', import.meta.url);
if (existsSync(fileURLToPath(compiled))) {
  await import(compiled.href);
} else {
  const { tsImport } = await import('tsx/esm/api');
  await tsImport('./ort-worker.ts', import.meta.url);
}
