import { writeSync } from 'node:fs';
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
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, (destination as pino.DestinationStream | undefined) ?? lineAtATime());
}

/**
 * Standard output, one write() per log line. HAProxy writes its access log to the same stdout
 * (inherited, templates/access-log-target.hbs), one writev() per line of at most 4096 bytes. On a
 * pipe, a write of at most PIPE_BUF bytes (4096 on Linux) is atomic (POSIX write(2)), so lines of
 * the two processes never interleave mid-line. This relies on it: pino's default asynchronous
 * destination would batch lines into one larger write that a full pipe can cut anywhere. A line
 * of edgelb's own longer than 4096 bytes (a rare error stack) may still be split.
 *
 * HAProxy makes the shared stdout non-blocking (O_NONBLOCK belongs to the open file, which both
 * processes share), so a full pipe (a slow log reader) answers EAGAIN. HAProxy then drops lines;
 * so does edgelb, rather than wait: a blocked event loop would stall applies, probes and the
 * health endpoint. The next line that fits says how many were dropped.
 */
function lineAtATime(): pino.DestinationStream {
  let dropped = 0;
  /** The rest of a line a full pipe took only part of: written before anything else. */
  let tail: Buffer | undefined;
  /** Offers `buffer` to stdout: false when it took none of it; a part it did not take becomes the tail. */
  const offer = (buffer: Buffer): boolean => {
    const rest = writeWhatFits(buffer);
    if (rest?.length === buffer.length) return false;
    tail = rest;
    return true;
  };
  return {
    write(line: string) {
      if (tail) tail = writeWhatFits(tail);
      if (!tail && dropped > 0) {
        const notice = { level: 40, time: new Date().toISOString(), msg: 'log lines dropped: standard output was full', dropped };
        if (offer(Buffer.from(`${JSON.stringify(notice)}\n`))) dropped = 0;
      }
      if (tail || dropped > 0 || !offer(Buffer.from(line))) dropped++;
    },
  };
}

/** Writes what stdout takes now; returns what it did not (undefined: all of it). */
function writeWhatFits(buffer: Buffer): Buffer | undefined {
  let rest = buffer;
  try {
    while (rest.length > 0) rest = rest.subarray(writeSync(1, rest));
    return undefined;
  } catch {
    // EAGAIN (full), EPIPE (no reader): traffic matters more than this line.
    return rest;
  }
}
