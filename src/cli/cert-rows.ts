import { BundleError, isExpired, parseBundle, type CertBundle, type CertSource } from '../tls/bundle.js';
import type { AcmeDomainState } from '../acme/state.js';

/** One row of `edgelb cert list`; never holds key material. */
export interface CertListRow {
  readonly name: string;
  readonly source: CertSource;
  readonly subject: string | null;
  readonly names: readonly string[];
  readonly notAfter: string | null;
  readonly daysLeft: number | null;
  /** 'valid', 'expired', or 'invalid:<reason>'; for an ACME domain without a certificate yet, 'pending' or 'failing:<reason>'. */
  readonly status: string;
  readonly encrypted: boolean;
  readonly fingerprint: string | null;
  /** For `certs/acme-<domain>` and ACME domains still waiting: the issuer's state (`acme/state/<domain>`). */
  readonly acme?: AcmeDomainState;
}

/** The row of one PEM bundle: what it covers and until when, or why it cannot be served. */
export function rowOf(name: string, source: CertSource, pem: string, encrypted: boolean, now: Date): CertListRow {
  let bundle: CertBundle;
  try {
    bundle = parseBundle(pem, source, now);
  } catch (error) {
    if (!(error instanceof BundleError)) throw error;
    return invalidRow(name, source, encrypted, error.message);
  }
  return {
    name,
    source,
    subject: commonName(bundle.subject),
    names: bundle.names,
    notAfter: bundle.notAfter.toISOString(),
    daysLeft: Math.floor((bundle.notAfter.getTime() - now.getTime()) / 86_400_000),
    status: isExpired(bundle, now) ? 'expired' : 'valid',
    encrypted,
    fingerprint: bundle.fingerprint,
  };
}

export function invalidRow(name: string, source: CertSource, encrypted: boolean, reason: string): CertListRow {
  return { name, source, subject: null, names: [], notAfter: null, daysLeft: null, status: `invalid:${reason}`, encrypted, fingerprint: null };
}

/** The row of an ACME domain still waiting for its first certificate. */
export function pendingAcmeRow(domain: string, state: AcmeDomainState, stateDir: string): CertListRow {
  return {
    name: `acme-${domain}`,
    source: { kind: 'acme', ref: `${stateDir}${domain}` },
    subject: null,
    names: [domain],
    notAfter: null,
    daysLeft: null,
    status: state.status === 'failing' ? `failing:${state.lastError?.message ?? 'unknown error'}` : 'pending',
    encrypted: false,
    fingerprint: null,
    acme: state,
  };
}

function commonName(subject: string): string {
  return /(?:^|, )CN=([^,]*)/.exec(subject)?.[1] ?? subject;
}
