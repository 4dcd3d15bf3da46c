import path from 'node:path';
import { chromium as playwrightChromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { CHROMIUM_PATH } from './environment.js';

const root = path.resolve(import.meta.dirname, '../..');

/**
 * Debian's Chromium, headless, as this machine needs it: no sandbox (root), and none of the
 * background connections a closed network refuses.
 */
export function launchChromium(): Promise<Browser> {
  return playwrightChromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Builds the page from the current sources into `outDir` (dist/web is left alone). */
export async function buildWebPage(outDir: string): Promise<void> {
  await build({ configFile: path.join(root, 'web/vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } });
}
