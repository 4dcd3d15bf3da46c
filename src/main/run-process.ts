import { DatabaseInUseError } from '../adapters/database/data-dir-lock.js';
import { startApp, type Role } from '../app.js';
import { ConfigError, loadConfig, type AppConfig } from '../config.js';
import { createLogger } from '../logger.js';

/**
 * Starts this process in one role and stops it cleanly on SIGTERM/SIGINT:
 * no new work, running generations finish or are handed back within
 * SHUTDOWN_TIMEOUT_MS, WebSockets close with 1001, exit 0. A second signal
 * exits at once.
 */
export async function runProcess(role: Role): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\nSee README.md, "Configuration".\n`);
      process.exit(2);
    }
    throw error;
  }
  if (role !== 'all-in-one' && (!config.redis || config.database.kind !== 'postgres')) {
    process.stderr.write(`npm run start:${role} needs REDIS_URL and DATABASE_URL so processes can share work; for one process use npm start.\n`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel, config.env !== 'production');
  const app = await startApp(config, { role, logger });

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, timeoutMs: config.generation.shutdownTimeoutMs }, 'shutting down');
    app.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

/** What to tell the user, in words and without a stack, when start-up fails for a reason they can fix; null otherwise. */
function startupProblem(error: unknown): string | null {
  if (error instanceof DatabaseInUseError) return error.message;
  const listenError = error as NodeJS.ErrnoException & { address?: string; port?: number };
  if (listenError?.code === 'EADDRINUSE' && listenError.port !== undefined) {
    return `Port ${listenError.port} on ${listenError.address} is in use by another program (another Story Agent?): stop it, or set PORT to a free port.`;
  }
  return null;
}

export function main(role: Role): void {
  runProcess(role).catch((error: unknown) => {
    const problem = startupProblem(error);
    if (problem) {
      process.stderr.write(`Story Agent (${role}) did not start: ${problem}\n`);
      process.exit(1);
    }
    process.stderr.write(`Story Agent (${role}) failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
