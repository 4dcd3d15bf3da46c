#!/usr/bin/env node
// Builds what production runs: the server (tsc → dist/server) and the web page (Vite → dist/web).
//   node scripts/build.mjs              build both
//   node scripts/build.mjs --if-needed  build only what is older than its sources (npm start runs this;
//                                       when nothing changed it costs a few stat calls)
// Plain JavaScript on purpose: it runs before anything is compiled.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const ifNeeded = process.argv.includes('--if-needed');

/** Newest modification time (ms) of a file or of everything under a folder; 0 when missing. */
function newest(entry) {
  let stat;
  try {
    stat = fs.statSync(entry);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const name of fs.readdirSync(entry)) {
    if (name === 'node_modules' || name === 'dist') continue;
    latest = Math.max(latest, newest(path.join(entry, name)));
  }
  return latest;
}

const from = (...parts) => path.join(root, ...parts);
const packageSources = fs.existsSync(from('packages')) ? fs.readdirSync(from('packages')).map((name) => from('packages', name, 'src')) : [];

const targets = [
  {
    name: 'server (dist/server)',
    stamp: from('dist/server/.built'),
    sources: [from('src'), ...packageSources, from('tsconfig.json'), from('tsconfig.build.json'), from('package-lock.json')],
    build: () => run(process.execPath, [from('node_modules/typescript/bin/tsc'), '-p', from('tsconfig.build.json')]),
  },
  {
    name: 'web page (dist/web)',
    stamp: from('dist/web/.built'),
    sources: [from('web'), from('src/client'), from('package-lock.json')],
    build: () => run(process.execPath, [from('node_modules/vite/bin/vite.js'), 'build', '--config', from('web/vite.config.ts'), '--logLevel', 'warn']),
  },
];

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(`Build failed: ${path.basename(args[0])} exited with ${result.status ?? result.signal}\n`);
    process.exit(1);
  }
}

for (const target of targets) {
  const builtAt = newest(target.stamp);
  if (ifNeeded && builtAt > 0 && target.sources.every((source) => newest(source) <= builtAt)) continue;
  process.stderr.write(`Building the ${target.name}…\n`);
  const startedAt = Date.now();
  target.build();
  fs.writeFileSync(target.stamp, `${new Date(startedAt).toISOString()}\n`);
  // The stamp takes the build's start time, so a source saved during the build counts as newer.
  fs.utimesSync(target.stamp, startedAt / 1000, startedAt / 1000);
}
