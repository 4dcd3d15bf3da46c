import { pino, type Logger } from 'pino';

export type { Logger };

/** Pretty lines when `pretty` and a person is watching the terminal; JSON everywhere else. */
export function createLogger(level: string, pretty = false): Logger {
  return pino({
    level,
    base: { service: 'story-agent' },
    transport: pretty && process.stdout.isTTY ? { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,service' } } : undefined,
  });
}
