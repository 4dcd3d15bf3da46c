import { defineConfig } from 'vitest/config';

/**
 * Four lanes; `npm test` runs them all, each has a script of its own for development:
 *   unit         pure logic and services against in-memory ports (npm run test:unit)
 *   integration  real HTTP, WebSocket, PostgreSQL and Redis with stand-in model servers (npm run test:fast runs both)
 *   processes    our processes started the way users start them, from compiled JavaScript (npm run test:processes)
 *   browser      the web page in Debian's Chromium (npm run test:browser)
 */
const PROCESS_SUITES = [
  'tests/integration/scale-out.test.ts',
  'tests/integration/cli.test.ts',
  'tests/integration/cli-security.test.ts',
  'tests/integration/cli-setup.test.ts',
  'tests/integration/shutdown.test.ts',
  'tests/integration/cli-page-editing.test.ts',
  'tests/integration/page-editing-scale-out.test.ts',
];
const BROWSER_SUITES = [
  'tests/integration/web.test.ts',
  'tests/integration/web-api-key.test.ts',
  'tests/integration/web-page-editing.test.ts',
  'tests/integration/web-setup.test.ts',
];

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS (main) and ESM (module) side by side; Node loads the CJS
    // one for Apollo and type-graphql, so test code must too, or schemas built by one
    // fail instanceof checks in the other ("from another module or realm").
    alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }],
  },
  test: {
    reporters: ['default', './tests/support/summary-reporter.ts'],
    // Two cores: more workers than that only slows every file down.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'unit', include: ['tests/unit/**/*.test.ts', 'packages/*/tests/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          exclude: [...PROCESS_SUITES, ...BROWSER_SUITES],
          // A few suites run one of our commands (models:pull, api-key) from compiled JavaScript.
          globalSetup: ['./tests/support/build.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'processes',
          include: PROCESS_SUITES,
          globalSetup: ['./tests/support/build.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: BROWSER_SUITES,
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
