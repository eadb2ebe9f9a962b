import { Backoff } from '../util/backoff.js';
import { baseState, type AcmeDomainState } from './state.js';

/**
 * When to order: the renewal threshold, the capped exponential backoff after failures (with the
 * CA's Retry-After), and which due domains start now. Pure: the manager calls `planPass` and
 * sets one timer for the answer's `nextAt`.
 */

export interface OrderBackoff {
  /** First retry delay. */
  readonly baseMs: number;
  /** Longest delay between attempts. */
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: OrderBackoff = { baseMs: 60_000, capMs: 6 * 3600_000 };

/** The shortest time between two renewals of a certificate that has not expired. */
export const DEFAULT_MIN_RENEW_INTERVAL_MS = 24 * 3600_000;

/** Longest Retry-After we accept: a broken header must not park a domain for a year. */
const MAX_RETRY_AFTER_MS = 7 * 24 * 3600_000;

/** Past this many doublings every delay is the cap (2^40 × any base is far above any cap). */
const MAX_DOUBLINGS = 40;

/**
 * The delay before attempt `failures + 1`: base, 2×base, 4×base, ... capped (edgelb's one backoff
 * policy, util/backoff.ts), each ±10% (random jitter, so replicas and domains that failed together
 * do not retry together), never above the cap. The failure count lives in etcd (a new leader
 * keeps the backoff of the old one), so the delay is computed from it rather than from a cursor
 * kept in memory; the ±10% is applied here because the next attempt is stored and shown.
 */
export function backoffDelayMs(failures: number, backoff: OrderBackoff, random: () => number = Math.random): number {
  const cursor = new Backoff({ firstMs: backoff.baseMs, maxMs: backoff.capMs });
  let nominal = cursor.next();
  for (let i = 1; i < Math.min(failures, MAX_DOUBLINGS + 1); i++) nominal = cursor.next();
  return Math.round(Math.min(backoff.capMs, nominal * (0.9 + 0.2 * random())));
}

/** `check every N ± 10%`. */
export function jittered(intervalMs: number, random: () => number = Math.random): number {
  return Math.round(intervalMs * (0.9 + 0.2 * random()));
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

/** The state after a failed attempt: one more failure, the next attempt after backoff or Retry-After, whichever is later. */
export function failedState(
  previous: AcmeDomainState | undefined,
  domain: string,
  failure: AttemptFailure,
  now: Date,
  backoff: OrderBackoff,
  random: () => number = Math.random,
): { state: AcmeDomainState; delayMs: number } {
  const failures = (previous?.failures ?? 0) + 1;
  let delayMs = backoffDelayMs(failures, backoff, random);
  if (failure.retryAfterMs !== undefined) delayMs = Math.max(delayMs, Math.min(failure.retryAfterMs, MAX_RETRY_AFTER_MS));
  const state: AcmeDomainState = {
    ...baseState(previous, domain),
    status: 'failing',
    failures,
    failingSince: (failures > 1 ? previous?.failingSince : undefined) ?? now.toISOString(),
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

/** What the manager knows about the certificate edgelb holds for a domain. */
export interface HeldCert {
  readonly notAfter: Date;
  readonly fingerprint: string;
}

export type Decision =
  | { readonly due: true; readonly reason: string }
  | { readonly due: false; readonly reason: string /** When to look again. */; readonly at: Date };

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
      return {
        due: false,
        reason: `renewed recently; KONTENA_LB_ACME_RENEW_DAYS (${renewDays}) is longer than the certificate lives`,
        at: new Date(issuedAt + minRenewIntervalMs),
      };
    }
    const days = Math.floor((cert.notAfter.getTime() - now.getTime()) / 86_400_000);
    reason = days < 0 ? 'certificate expired' : `certificate expires in ${days} day(s), renewing (threshold ${renewDays})`;
  }
  if (nextAttempt && nextAttempt.getTime() > now.getTime()) return { due: false, reason: waitReason, at: nextAttempt };
  return { due: true, reason };
}

export interface PassInput {
  /** The domains wanted, in order. */
  readonly domains: readonly string[];
  readonly states: ReadonlyMap<string, AcmeDomainState>;
  readonly certs: ReadonlyMap<string, HeldCert>;
  /** Domains with an attempt in progress. */
  readonly running: ReadonlySet<string>;
  /** Attempts at once, at most. */
  readonly concurrency: number;
  readonly now: Date;
  readonly renewDays: number;
  readonly minRenewIntervalMs?: number;
  /** Look at every domain again at least this often (±10%). */
  readonly checkIntervalMs: number;
  readonly random: () => number;
}

export interface Pass {
  /** Due domains to order now, with why (never more than `concurrency` running in all). */
  readonly start: readonly { readonly domain: string; readonly reason: string }[];
  /** When to look again (epoch ms); a finishing attempt also makes the manager look again. */
  readonly nextAt: number;
}

/** One look at every wanted domain: what to start now, and when to look next. */
export function planPass(input: PassInput): Pass {
  const { now } = input;
  let nextAt = now.getTime() + jittered(input.checkIntervalMs, input.random);
  const start: { domain: string; reason: string }[] = [];
  for (const domain of input.domains) {
    if (input.running.has(domain)) continue;
    const decision = decide(input.states.get(domain), input.certs.get(domain), now, input.renewDays, input.minRenewIntervalMs);
    if (!decision.due) {
      nextAt = Math.min(nextAt, decision.at.getTime());
      continue;
    }
    if (input.running.size + start.length >= input.concurrency) continue;
    start.push({ domain, reason: decision.reason });
  }
  return { start, nextAt };
}

/** `next` of a domain in /status: what happens next, from this replica's view. */
export function nextStep(decision: Decision, running: boolean): string {
  if (running) return 'ordering now';
  return decision.due ? `due: ${decision.reason}` : `${decision.reason}; next look at ${decision.at.toISOString()}`;
}
