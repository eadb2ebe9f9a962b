import { EntryError } from './values.js';

/**
 * Per-client limits of a service (issue 15): `rate_limit` and `conn_limit`. HAProxy counts them
 * in a stick table keyed by the client address (configuration manual 2.6, 4.2 "stick-table"), so
 * the values here become numbers in that table's declaration and in the rules that read it.
 */

/** `rate_limit`: at most `requests` requests per client address in any `periodMs` milliseconds. */
export interface RateLimit {
  readonly requests: number;
  readonly periodMs: number;
}

export const LIMIT_BOUNDS = Object.freeze({
  requests: 1_000_000,
  periodMs: 3_600_000,
  connections: 100_000,
});

/** `conn_limit` of a service whose value could not be used: no connection at all (closed, not left open). */
export const CLOSED_CONN_LIMIT = 0;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const RATE = /^([0-9]{1,7})\/([0-9]{1,7})(ms|s|m|h)$/;

/** `<requests>/<period>`, e.g. `100/10s`, `20/1s`, `600/1m`: 1 to 1,000,000 requests, a period of 1 ms to 1 h. */
export function parseRateLimit(raw: string, key = 'rate_limit'): RateLimit {
  const match = RATE.exec(raw.trim());
  const requests = Number(match?.[1]);
  const periodMs = Number(match?.[2]) * (UNIT_MS[match?.[3] ?? ''] ?? Number.NaN);
  if (!match) throw new EntryError(`${key} ${JSON.stringify(raw)} is not <requests>/<period> (e.g. 100/10s; units ms, s, m, h)`);
  if (requests < 1 || requests > LIMIT_BOUNDS.requests)
    throw new EntryError(`${key} allows 1 to ${LIMIT_BOUNDS.requests} requests per period, not ${requests}`);
  if (periodMs < 1 || periodMs > LIMIT_BOUNDS.periodMs) throw new EntryError(`${key} period must be positive and at most 1h`);
  return { requests, periodMs };
}

/** `conn_limit`: the most concurrent connections one client address may hold, 1 to 100,000. */
export function parseConnLimit(raw: string, key = 'conn_limit'): number {
  const text = raw.trim();
  const limit = Number(text);
  if (!/^[0-9]{1,6}$/.test(text) || limit < 1 || limit > LIMIT_BOUNDS.connections) {
    throw new EntryError(`${key} ${JSON.stringify(raw)} must be a whole number from 1 to ${LIMIT_BOUNDS.connections}`);
  }
  return limit;
}
