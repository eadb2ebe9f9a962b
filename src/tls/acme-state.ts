/**
 * Per-domain ACME state, as stored in etcd at `<lbPath>/acme/state/<domain>` (JSON), and the pure
 * rules that decide when to order: renewal threshold, capped exponential backoff with jitter, and
 * the CA's Retry-After. Kept in etcd, not in memory, so that a new leader resumes a pending order
 * and keeps honouring the backoff of the one before it.
 */

export const LETS_ENCRYPT_PRODUCTION = 'https://acme-v02.api.letsencrypt.org/directory';
export const LETS_ENCRYPT_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

export const STATE_DIR = 'acme/state/';
export const CHALLENGE_DIR = 'acme/challenges/';
export const ACCOUNT_KEY = 'acme/account';
export const LEADER_KEY = 'acme/leader';
export const CERT_PREFIX = 'certs/acme-';

/** An order in progress: enough for any replica to pick it up again. */
export interface PendingOrder {
  readonly orderUrl: string;
  readonly startedAt: string;
  /** Challenge tokens published at `acme/challenges/<token>`; deleted when the order ends. */
  readonly tokens: readonly string[];
  /** The replica (leader id) that last worked on it. */
  readonly by: string;
}

export interface LastError {
  readonly at: string;
  /** The CA's own words (its problem `detail`), or what went wrong on our side. */
  readonly message: string;
  /** ACME problem type, e.g. `urn:ietf:params:acme:error:rateLimited`. */
  readonly type?: string;
  readonly status?: number;
}

export type AcmeStatus = 'pending' | 'valid' | 'failing';

export interface AcmeDomainState {
  readonly domain: string;
  readonly status: AcmeStatus;
  /** notAfter of the certificate edgelb last stored for this domain. */
  readonly validUntil?: string;
  readonly pending?: PendingOrder;
  /** Failed attempts in a row; 0 after a success. */
  readonly failures: number;
  readonly lastError?: LastError;
  /** No order before this time (backoff or the CA's Retry-After). */
  readonly nextAttempt?: string;
  readonly issuedAt?: string;
  readonly updatedAt: string;
}

export interface Backoff {
  /** First retry delay. */
  readonly baseMs: number;
  /** Longest delay between attempts. */
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 60_000, capMs: 6 * 3600_000 };

/**
 * The delay before attempt `failures + 1`: base, 2×base, 4×base, ... capped, each ±10% (random
 * jitter, so replicas and domains that failed together do not retry together), never above the cap.
 */
export function backoffDelayMs(failures: number, backoff: Backoff, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.min(failures - 1, 40));
  const nominal = Math.min(backoff.capMs, backoff.baseMs * 2 ** exponent);
  return Math.round(Math.min(backoff.capMs, nominal * (0.9 + 0.2 * random())));
}

/** `check every N ± 10%`. */
export function jittered(intervalMs: number, random: () => number = Math.random): number {
  return Math.round(intervalMs * (0.9 + 0.2 * random()));
}

/** Seconds (`120`) or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | undefined, now: number): number | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** What went wrong in one attempt, as far as the schedule is concerned. */
export interface AttemptFailure {
  readonly message: string;
  readonly type?: string;
  readonly status?: number;
  /** From the CA's Retry-After header. */
  readonly retryAfterMs?: number;
}

export function isRateLimited(failure: Pick<AttemptFailure, 'type' | 'status'>): boolean {
  return failure.status === 429 || failure.type === 'urn:ietf:params:acme:error:rateLimited';
}

/** Longest Retry-After we accept: a broken header must not park a domain for a year. */
const MAX_RETRY_AFTER_MS = 7 * 24 * 3600_000;

/** The state after a failed attempt: one more failure, the next attempt after backoff or Retry-After, whichever is later. */
export function failedState(
  previous: AcmeDomainState | undefined,
  domain: string,
  failure: AttemptFailure,
  now: Date,
  backoff: Backoff,
  random: () => number = Math.random,
): { state: AcmeDomainState; delayMs: number } {
  const failures = (previous?.failures ?? 0) + 1;
  let delayMs = backoffDelayMs(failures, backoff, random);
  if (failure.retryAfterMs !== undefined) delayMs = Math.max(delayMs, Math.min(failure.retryAfterMs, MAX_RETRY_AFTER_MS));
  const state: AcmeDomainState = {
    ...base(previous, domain),
    status: 'failing',
    failures,
    lastError: {
      at: now.toISOString(),
      message: failure.message,
      ...(failure.type !== undefined ? { type: failure.type } : {}),
      ...(failure.status !== undefined ? { status: failure.status } : {}),
    },
    nextAttempt: new Date(now.getTime() + delayMs).toISOString(),
    updatedAt: now.toISOString(),
  };
  return { state, delayMs };
}

export function pendingState(previous: AcmeDomainState | undefined, domain: string, pending: PendingOrder, now: Date): AcmeDomainState {
  return { ...base(previous, domain), status: 'pending', pending, updatedAt: now.toISOString() };
}

export function issuedState(previous: AcmeDomainState | undefined, domain: string, validUntil: Date, now: Date): AcmeDomainState {
  const { pending: _pending, lastError: _lastError, nextAttempt: _nextAttempt, ...rest } = base(previous, domain);
  return {
    ...rest,
    status: 'valid',
    failures: 0,
    validUntil: validUntil.toISOString(),
    issuedAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
}

function base(previous: AcmeDomainState | undefined, domain: string): AcmeDomainState {
  return previous ?? { domain, status: 'pending', failures: 0, updatedAt: new Date(0).toISOString() };
}

/** What `offer()` knows about the certificate edgelb holds for a domain. */
export interface HeldCert {
  readonly notAfter: Date;
  readonly fingerprint: string;
}

/** The shortest time between two renewals of a certificate that has not expired. */
export const DEFAULT_MIN_RENEW_INTERVAL_MS = 24 * 3600_000;

export type Decision =
  | { readonly due: true; readonly reason: string }
  | { readonly due: false; readonly reason: string; /** When to look again. */ readonly at: Date };

/**
 * Whether to order for `domain` now. Order when there is no certificate, when it has fewer than
 * `renewDays` days left, or to finish a pending order; but never before `nextAttempt`, and a
 * certificate that has not expired is renewed at most once per `minRenewIntervalMs`.
 */
export function decide(
  state: AcmeDomainState | undefined,
  cert: HeldCert | undefined,
  now: Date,
  renewDays: number,
  minRenewIntervalMs = DEFAULT_MIN_RENEW_INTERVAL_MS,
): Decision {
  const nextAttempt = state?.nextAttempt === undefined ? undefined : new Date(state.nextAttempt);
  const waitReason = state?.lastError ? `backing off after ${state.failures} failure(s): ${state.lastError.message}` : 'waiting';
  let reason: string;
  if (state?.pending) reason = 'resuming a pending order';
  else if (!cert) reason = 'no certificate yet';
  else {
    const renewAt = new Date(cert.notAfter.getTime() - renewDays * 86_400_000);
    if (renewAt.getTime() > now.getTime()) {
      // Not due for renewal; a backoff left from earlier failures does not matter until then.
      return { due: false, reason: 'certificate valid', at: nextAttempt && nextAttempt > renewAt ? nextAttempt : renewAt };
    }
    // A renewal threshold longer than the certificates live would otherwise renew in a loop.
    const issuedAt = state?.issuedAt === undefined ? undefined : Date.parse(state.issuedAt);
    if (issuedAt !== undefined && cert.notAfter.getTime() > now.getTime() && issuedAt + minRenewIntervalMs > now.getTime()) {
      return { due: false, reason: `renewed recently; KONTENA_LB_ACME_RENEW_DAYS (${renewDays}) is longer than the certificate lives`, at: new Date(issuedAt + minRenewIntervalMs) };
    }
    const days = Math.floor((cert.notAfter.getTime() - now.getTime()) / 86_400_000);
    reason = days < 0 ? 'certificate expired' : `certificate expires in ${days} day(s), renewing (threshold ${renewDays})`;
  }
  if (nextAttempt && nextAttempt.getTime() > now.getTime()) return { due: false, reason: waitReason, at: nextAttempt };
  return { due: true, reason };
}

/** Reads a stored state; undefined when absent or not ours (it is then rewritten on the next attempt). */
export function parseState(text: string | undefined, domain: string): AcmeDomainState | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<AcmeDomainState>;
    if (typeof value !== 'object' || value === null || value.domain !== domain) return undefined;
    if (value.status !== 'pending' && value.status !== 'valid' && value.status !== 'failing') return undefined;
    return {
      ...value,
      failures: Number.isInteger(value.failures) && value.failures! >= 0 ? value.failures! : 0,
      updatedAt: typeof value.updatedAt === 'string' ? value.updatedAt : new Date(0).toISOString(),
    } as AcmeDomainState;
  } catch {
    return undefined;
  }
}

export function serializeState(state: AcmeDomainState): string {
  return JSON.stringify(state);
}
