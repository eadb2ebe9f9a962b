import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

/**
 * A sink that parses each JSON log line into `logs` (and echoes it to stderr with
 * EDGELB_TEST_LOGS set), for tests that assert what was logged.
 */
export function logSink(logs: Record<string, unknown>[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      if (process.env.EDGELB_TEST_LOGS) process.stderr.write(chunk);
      done();
    },
  });
}

/** A logger at `level` whose lines land, parsed, in `logs`. */
export function capturingLogger(level = 'debug'): { logger: Logger; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  return { logger: createLogger(level, false, logSink(logs)), logs };
}
