import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'story-agent' },
    // Readable lines for someone running `npm start` in a terminal; JSON everywhere else.
    transport:
      process.stdout.isTTY && process.env.NODE_ENV !== 'production'
        ? { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,service' } }
        : undefined,
  });
}
