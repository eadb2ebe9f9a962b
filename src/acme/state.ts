/**
 * Per-domain ACME state, as stored in etcd at `<lbPath>/acme/state/<domain>` (JSON), and the
 * transitions an attempt makes to it. Kept in etcd, not in memory, so that a new leader resumes a
 * pending order and keeps honouring the backoff of the one before it (schedule.ts decides when).
 */

/** An order in progress: enough for any replica to pick it up again. */
export interface PendingOrder {
  readonly orderUrl: string;
  readonly startedAt: string;
  /** Challenge tokens published at `acme/challenges/<token>`; deleted when the order ends. */
  readonly tokens: readonly string[];
  /** The replica (leader id) that last worked on it. */
  readonly by: string;
  /** DNS-01 TXT records published for it and not yet removed (any leader removes them). */
  readonly records?: readonly { readonly fqdn: string; readonly value: string }[];
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
  /** When the first of those failures happened (certificate warnings: renewal failing for over a day). */
  readonly failingSince?: string;
  readonly lastError?: LastError;
  /** No order before this time (backoff or the CA's Retry-After). */
  readonly nextAttempt?: string;
  readonly issuedAt?: string;
  readonly updatedAt: string;
}

export function pendingState(previous: AcmeDomainState | undefined, domain: string, pending: PendingOrder, now: Date): AcmeDomainState {
  return { ...baseState(previous, domain), status: 'pending', pending, updatedAt: now.toISOString() };
}

export function issuedState(previous: AcmeDomainState | undefined, domain: string, validUntil: Date, now: Date): AcmeDomainState {
  const { pending: _pending, lastError: _lastError, nextAttempt: _nextAttempt, failingSince: _failingSince, ...rest } = baseState(previous, domain);
  return {
    ...rest,
    status: 'valid',
    failures: 0,
    validUntil: validUntil.toISOString(),
    issuedAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
}

export function baseState(previous: AcmeDomainState | undefined, domain: string): AcmeDomainState {
  return previous ?? { domain, status: 'pending', failures: 0, updatedAt: new Date(0).toISOString() };
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
