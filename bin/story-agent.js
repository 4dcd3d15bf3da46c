#!/usr/bin/env node
// `npx story-agent …`: the command line, compiled to dist/server by `npm run build` (npm start builds it too).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/server/src/cli/main.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('story-agent is not built yet: run `npm run build` in the project folder (npm start builds it too).\n');
  process.exit(2);
}
await import(cli.href);
