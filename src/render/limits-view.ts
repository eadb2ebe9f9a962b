import { CLOSED_CONN_LIMIT } from '../model/limits.js';
import type { HttpService, TcpService } from '../model/types.js';

/**
 * The per-client limits of a service as its template reads them (the `limits` of its view):
 * closed, or the stick table's lifetime and the limits its rules check. Undefined: no limits.
 */
export interface LimitsView {
  /** conn_limit was invalid: refuse everything rather than serve without the limit. */
  readonly closed: boolean;
  /** How long an idle client's counters stay in the table: at least the rate's period. */
  readonly expireMs: number;
  readonly rate?: { readonly requests: number; readonly periodMs: number; readonly retryAfter: number };
  readonly connLimit?: number;
}

/**
 * A client that only holds connections needs its entry while they are open (HAProxy keeps a
 * tracked entry however old); this is how long it stays after the last one closed.
 */
const CONN_ONLY_EXPIRE_MS = 60_000;

export function limitsViewOf(service: HttpService | TcpService): LimitsView | undefined {
  const rateLimit = service.kind === 'http' ? service.rateLimit : undefined;
  const connLimit = service.connLimit;
  if (connLimit === CLOSED_CONN_LIMIT) return { closed: true, expireMs: CONN_ONLY_EXPIRE_MS };
  if (rateLimit === undefined && connLimit === undefined) return undefined;
  return {
    closed: false,
    expireMs: rateLimit?.periodMs ?? CONN_ONLY_EXPIRE_MS,
    // Retry-After counts whole seconds (RFC 9110, 10.2.3): a period under a second rounds up to 1.
    ...(rateLimit && { rate: { ...rateLimit, retryAfter: Math.ceil(rateLimit.periodMs / 1000) } }),
    ...(connLimit !== undefined && { connLimit }),
  };
}
