import { Command } from 'commander';
import { ApiKeyStore } from '../adapters/database/api-key-store.js';
import { DatabaseInUseError } from '../adapters/database/data-dir-lock.js';
import { type AppConfig, ConfigError, loadConfig } from '../config.js';
import { closeDatabase, createDataSource, openDatabase } from '../adapters/database/data-source.js';
import { ApiKeyService } from '../services/auth/api-keys.js';
import { InvalidInputError } from '../services/errors.js';

/**
 * `npm run api-key -- create <owner>` prints a new key as the last line of its output;
 * `npm run api-key -- revoke <owner|key id>` revokes one key or all of an owner's.
 * Works on the database the server uses (DATABASE_URL, or the embedded one in DATA_DIR;
 * the embedded one only while the server is stopped).
 */
async function withKeys<T>(task: (keys: ApiKeyService) => Promise<T>): Promise<T> {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\nSee README.md, "Configuration".\n`);
    process.exit(2);
  }
  const dataSource = await openDatabase(createDataSource(config.database), config.database, {
    onLockLost(error) {
      process.stderr.write(
        `api-key: lost the lock on the embedded database (${error.message}); stopped without finishing, so that two processes never write to it.\n`,
      );
      process.exit(1);
    },
  });
  try {
    return await task(new ApiKeyService(new ApiKeyStore(dataSource)));
  } finally {
    await closeDatabase(dataSource);
  }
}

const program = new Command().name('npm run api-key --').description('Create and revoke API keys for AUTH_MODE=api-key.');

program
  .command('create')
  .argument('<owner>', 'who the key is for (1 to 64 letters, digits, ".", "_", "-", "@"); stories belong to owners')
  .action(async (owner: string) => {
    const { id, key } = await withKeys((keys) => keys.create(owner));
    process.stdout.write(`Created API key ${id} for ${owner}. It is shown only now; the server keeps only its hash:\n${key}\n`);
  });

program
  .command('revoke')
  .argument('<owner-or-key-id>', 'an owner (revokes all their keys) or one key id')
  .action(async (target: string) => {
    const count = await withKeys((keys) => keys.revoke(target));
    process.stdout.write(count ? `Revoked ${count} key${count === 1 ? '' : 's'}.\n` : `No active key has the owner or id ${target}.\n`);
    if (!count) process.exitCode = 1;
  });

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(
    `api-key: ${error instanceof InvalidInputError || error instanceof DatabaseInUseError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(error instanceof InvalidInputError ? 2 : 1);
});
