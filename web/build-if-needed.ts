import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * `npm start` runs this first: builds the page into dist/web unless the build
 * there is newer than every source it comes from (then it costs a few stat calls).
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const output = path.join(root, 'dist/web/index.html');
const sources = [path.join(root, 'web'), path.join(root, 'src/client'), path.join(root, 'package-lock.json')];

function newest(entry: string): number {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(entry);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const name of fs.readdirSync(entry)) latest = Math.max(latest, newest(path.join(entry, name)));
  return latest;
}

const built = fs.existsSync(output) ? fs.statSync(output).mtimeMs : 0;
if (built === 0 || sources.some((source) => newest(source) > built)) {
  process.stderr.write('Building the web page (dist/web)…\n');
  // Loaded only when needed: importing Vite costs more than the check itself.
  const { build } = await import('vite');
  await build({ configFile: path.join(root, 'web/vite.config.ts'), logLevel: 'warn' });
}
