import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines in production; a readable, coloured form when stdout is a terminal: one line per
 * event, fields inline, so a burst of applies reads like a log and not like a JSON dump.
 * Loggers are passed to every component; nothing imports a global one.
 */
export function createLogger(level: string, pretty: boolean, destination?: NodeJS.WritableStream): Logger {
  if (pretty) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true } },
    });
  }
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, destination as pino.DestinationStream | undefined);
}

