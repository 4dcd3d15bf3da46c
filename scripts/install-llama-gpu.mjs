#!/usr/bin/env node
// Adds node-llama-cpp's CUDA or Vulkan prebuilt binaries, which a default install leaves out:
//   npm run install:llama-gpu -- cuda      NVIDIA (CUDA 12 driver), about 540 MB
//   npm run install:llama-gpu -- vulkan    any GPU with a Vulkan driver, about 80 MB
//
// Why they are left out: node-llama-cpp lists a prebuilt package per platform and GPU back-end as optional
// dependencies, so a plain install on Linux x64 carries CUDA and Vulkan builds (about 620 MB) that a
// machine without those GPUs never loads. package.json's `overrides` point those package names at a
// build for another platform (linux-riscv64), which npm skips, so `npm ci` stays small, offline-clean
// and the lockfile valid. This script fetches the real packages for this node-llama-cpp version with
// npm itself (`npm pack`: the registry, its integrity check, your npm configuration) and unpacks them
// where node-llama-cpp looks for them. `npm ci` removes them again: run this after it.
//
// Plain JavaScript on purpose: it runs without a build.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const backend = process.argv[2];
const PACKAGES = { cuda: ['cuda', 'cuda-ext'], vulkan: ['vulkan'] };

function fail(message) {
  process.stderr.write(`install:llama-gpu: ${message}\n`);
  process.exit(1);
}

if (!(backend in PACKAGES)) fail('say which GPU back-end: `npm run install:llama-gpu -- cuda` or `-- vulkan`');
const platform = { linux: 'linux', win32: 'win' }[process.platform];
if (!platform || process.arch !== 'x64') {
  fail(
    `node-llama-cpp has no prebuilt ${backend} binary for ${process.platform}-${process.arch}` +
      (process.platform === 'darwin' ? ' (on Apple silicon, Metal is in the default install already)' : ''),
  );
}
const { version } = JSON.parse(fs.readFileSync(path.join(root, 'node_modules/node-llama-cpp/package.json'), 'utf8'));
const scopeDir = path.join(root, 'node_modules/@node-llama-cpp');
// Beside node_modules, so the unpacked folder is renamed into place on the same file system.
const work = fs.mkdtempSync(path.join(root, 'node_modules', '.llama-gpu-'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(command, args) {
  const result = spawnSync(command, args, { cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], shell: process.platform === 'win32' });
  if (result.status !== 0) fail(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
  return result.stdout;
}

try {
  for (const suffix of PACKAGES[backend]) {
    const name = `@node-llama-cpp/${platform}-x64-${suffix}`;
    process.stdout.write(`Fetching ${name}@${version}…\n`);
    const [packed] = JSON.parse(run(npm, ['pack', `${name}@${version}`, '--json', '--pack-destination', work]));
    const unpacked = path.join(work, suffix);
    fs.mkdirSync(unpacked);
    run('tar', ['-xzf', path.join(work, packed.filename), '-C', unpacked]);
    const target = path.join(scopeDir, `${platform}-x64-${suffix}`);
    fs.rmSync(target, { recursive: true, force: true });
    fs.mkdirSync(scopeDir, { recursive: true });
    fs.renameSync(path.join(unpacked, 'package'), target);
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
process.stdout.write(
  `node-llama-cpp's ${backend} binaries are installed. The embedded model uses them at the next start (EMBEDDED_GPU=auto, or EMBEDDED_GPU=${backend} to insist); \`npm ci\` removes them again.\n`,
);
