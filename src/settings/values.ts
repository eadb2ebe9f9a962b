import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './config-error.js';

// Schemas of the kinds of value settings take. Each message is the whole line the operator
// sees, naming the setting and quoting what was given (never for secrets: see statsPassword).

const quote = (raw: unknown) => JSON.stringify(raw);

/** A string that passes `test`, else one line from `message`. */
export function checked(test: (raw: string) => boolean, message: (raw: string) => string): z.ZodType<string, string> {
  // abort: a later check of the same value (a bound) may assume this one passed.
  return z.string().refine(test, { error: (issue) => message(issue.input as string), abort: true });
}

/** A parser that throws ConfigError (its message is the line) as a schema. */
export function parsedBy<T>(parse: (raw: string) => T): z.ZodType<T, string> {
  return z.string().transform((raw, context) => {
    try {
      return parse(raw);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      // The issue keeps the message only, never the value: it may be a secret.
      context.issues.push({ code: 'custom', message: error.message, input: undefined });
      return z.NEVER;
    }
  });
}

export const text = (): z.ZodType<string, string> => z.string();

/** A path, made absolute against the working directory. */
export const absolutePath = (): z.ZodType<string, string> => z.string().transform((raw) => path.resolve(raw));

export const port = (env: string): z.ZodType<number, string> =>
  checked(
    (raw) => /^[0-9]{1,5}$/.test(raw) && Number(raw) >= 1 && Number(raw) <= 65535,
    (raw) => `${env} must be a port number between 1 and 65535, got ${quote(raw)}`,
  ).transform(Number);

export const boolean = (env: string): z.ZodType<boolean, string> =>
  checked(
    (raw) => TRUE.has(raw.toLowerCase()) || FALSE.has(raw.toLowerCase()),
    (raw) => `${env} must be true or false, got ${quote(raw)}`,
  ).transform((raw) => TRUE.has(raw.toLowerCase()));
const TRUE = new Set(['true', '1', 'yes']);
const FALSE = new Set(['false', '0', 'no']);

const DURATION = /^([0-9]+)(ms|s|m|h|d)?$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 } as const;

/** `30s`, `15m`, `1h`, `2d`, `500ms` or plain milliseconds, as written (HAProxy takes the same syntax). */
export const duration = (env: string): z.ZodType<string, string> =>
  checked(
    (raw) => DURATION.test(raw),
    (raw) => `${env} must be a duration like 30s, 15m or 1h, got ${quote(raw)}`,
  );

/** A duration in milliseconds, optionally bounded (`message` says the bounds). */
export function durationMs(env: string, bounds?: { min: number; max: number; message: (raw: string) => string }): z.ZodType<number, string> {
  const checkedDuration =
    bounds === undefined
      ? duration(env)
      : duration(env).refine((raw) => msOf(raw) >= bounds.min && msOf(raw) <= bounds.max, { error: (issue) => bounds.message(issue.input as string) });
  return checkedDuration.transform(msOf);
}

function msOf(raw: string): number {
  const match = DURATION.exec(raw)!;
  return Number(match[1]) * UNIT_MS[(match[2] ?? 'ms') as keyof typeof UNIT_MS];
}
