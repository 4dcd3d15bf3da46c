import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The web page: `npm run build` writes it to dist/web, which the server
 * (`npm start`) serves at /. `npm run dev:web` serves it with live reload and
 * sends /graphql (HTTP and WebSocket) and /media to a server on :4000.
 */
const api = process.env.STORY_AGENT_URL ?? 'http://localhost:4000';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    reportCompressedSize: false,
  },
  server: {
    proxy: {
      '/graphql': { target: api, ws: true, changeOrigin: true },
      '/media': { target: api, changeOrigin: true },
      '/export': { target: api, changeOrigin: true },
    },
  },
});
