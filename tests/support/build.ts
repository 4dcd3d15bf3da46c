import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * Vitest global set-up for the suites that start our processes the way users do (compiled
 * JavaScript under dist/): builds what is older than its sources, once per run.
 */
export default function buildOnce(): void {
  const root = path.resolve(import.meta.dirname, '../..');
  execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs'), '--if-needed'], { cwd: root, stdio: 'inherit' });
}
