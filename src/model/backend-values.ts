import { EntryError } from './values.js';

/**
 * Validators of issue 15's per-instance and backend keys (weights, timeouts, retries, the
 * protocol to the instances). As in values.ts, whatever passes is rendered into a config line
 * or a runtime API command, so each returns a value built from a fixed vocabulary or digits.
 */

/** HAProxy's server weight range (configuration manual 5.2, "weight <weight>": 0 to 256). */
export const WEIGHT_MAX = 256;

/** `weights/<instance>`: an integer 0–256. */
export function parseWeight(raw: string, key = 'weight'): number {
  const text = raw.trim();
  if (!/^[0-9]{1,3}$/.test(text) || Number(text) > WEIGHT_MAX)
    throw new EntryError(`${key} ${JSON.stringify(raw)} is not a whole number from 0 to ${WEIGHT_MAX}`);
  return Number(text);
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** Longest timeout accepted: a day. Beyond, a stuck server holds a connection (and a slot) for good. */
const DURATION_MAX_MS = 86_400_000;

/**
 * A timeout (`timeout_server`, `timeout_connect`): digits and a unit, `ms`, `s`, `m` or `h`
 * (configuration manual 2.5, "Time format"), from 1 ms to 24 h. The unit is required: HAProxy
 * reads a bare number as milliseconds, which `30` for 30 seconds would silently be.
 */
export function parseDuration(raw: string, key = 'timeout'): string {
  const match = /^([0-9]{1,8})(ms|s|m|h)$/.exec(raw.trim());
  const ms = match ? Number(match[1]) * UNIT_MS[match[2]!]! : Number.NaN;
  if (!match || !(ms >= 1 && ms <= DURATION_MAX_MS))
    throw new EntryError(`${key} ${JSON.stringify(raw)} is not a duration from 1ms to 24h (digits and ms, s, m or h)`);
  return `${match[1]}${match[2]}`;
}

/**
 * HAProxy 2.6's `retry-on` keywords (configuration manual 4.2, "retry-on"): connection and
 * response failures, and the status codes it accepts there.
 */
export const RETRY_ON = Object.freeze([
  'none',
  'conn-failure',
  'empty-response',
  'junk-response',
  'response-timeout',
  '0rtt-rejected',
  'all-retryable-errors',
  '401',
  '403',
  '404',
  '408',
  '425',
  '500',
  '501',
  '502',
  '503',
  '504',
]);

/** `retry_on`: keywords from RETRY_ON, separated by commas or spaces; `none` only alone. */
export function parseRetryOn(raw: string, key = 'retry_on'): readonly string[] {
  const words = [
    ...new Set(
      raw
        .trim()
        .split(/[\s,]+/)
        .filter((w) => w !== ''),
    ),
  ];
  const unknown = words.filter((w) => !RETRY_ON.includes(w));
  if (words.length === 0 || unknown.length > 0) {
    throw new EntryError(
      `${key} ${JSON.stringify(raw)}: ${words.length === 0 ? 'empty' : `unknown ${unknown.map((w) => JSON.stringify(w)).join(', ')}`}; one or more of ${RETRY_ON.join(', ')}`,
    );
  }
  if (words.includes('none') && words.length > 1) throw new EntryError(`${key} ${JSON.stringify(raw)}: 'none' cannot be combined with other conditions`);
  return words;
}

/** How the load balancer speaks to a service's instances (`backend_protocol`). */
export type BackendProtocol = 'http' | 'h2' | 'https';
const BACKEND_PROTOCOLS: readonly BackendProtocol[] = ['http', 'h2', 'https'];

/** `backend_protocol`: `http`, `h2` or `https`. */
export function parseBackendProtocol(raw: string, key = 'backend_protocol'): BackendProtocol {
  const text = raw.trim();
  const found = BACKEND_PROTOCOLS.find((p) => p === text);
  if (found === undefined) throw new EntryError(`${key} ${JSON.stringify(raw)} is not one of ${BACKEND_PROTOCOLS.join(', ')}`);
  return found;
}

/**
 * `backend_verify`: only `none`, an explicit statement that TLS to the instances is not verified.
 * Verification is `backend_ca` (a CA bundle's name); `https` with neither leaves the service out
 * (parse.ts) rather than skipping the verification silently.
 */
export function parseBackendVerify(raw: string, key = 'backend_verify'): 'none' {
  if (raw.trim() !== 'none') throw new EntryError(`${key} ${JSON.stringify(raw)}: only "none" is accepted (to verify the instances, set backend_ca)`);
  return 'none';
}

/** `canary`: this share of the service's requests goes to another HTTP service. */
export interface Canary {
  readonly service: string;
  /** 0–100. */
  readonly percent: number;
}

/** `canary` = `<other service>:<percent>`; the other service must exist (parse.ts). */
export function parseCanary(raw: string, key = 'canary'): Canary {
  const match = /^([A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?):([0-9]{1,3})$/.exec(raw.trim());
  if (!match || Number(match[2]) > 100) throw new EntryError(`${key} ${JSON.stringify(raw)} is not <service>:<percent> (a service name and 0 to 100)`);
  return { service: match[1]!, percent: Number(match[2]) };
}

/** `canary_header` = `<Header-Name>:<value>`: a request carrying it always goes to the canary. */
export interface CanaryHeader {
  readonly name: string;
  readonly value: string;
}

/**
 * A header name (an RFC 9110 token without the characters HAProxy's sample syntax reads: only
 * letters, digits and '-') and a value of URL-safe characters: both are written into a sample
 * fetch and a pattern of the frontend's rules.
 */
export function parseCanaryHeader(raw: string, key = 'canary_header'): CanaryHeader {
  const match = /^([A-Za-z0-9-]{1,64}):([A-Za-z0-9._~-]{1,128})$/.exec(raw.trim());
  if (!match)
    throw new EntryError(
      `${key} ${JSON.stringify(raw)} is not <Header-Name>:<value> (letters, digits and '-' in the name; letters, digits and . _ ~ - in the value)`,
    );
  return { name: match[1]!, value: match[2]! };
}
