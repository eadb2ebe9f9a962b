/**
 * Why talking to etcd failed, as a stable code: retries, `/healthz`, metric labels and tests
 * decide by the code, never by words in a message. The message is one line for the log and
 * never holds a password or key material.
 */
export type EtcdFailureCode =
  /** The user name or password was refused. */
  | 'auth'
  /** Authenticated, but the user may not read or write the load balancer's keys. */
  | 'permission'
  /** The TLS handshake failed: an untrusted server certificate, or the server refused ours. */
  | 'tls'
  /** No member answered (refused, reset, timed out, no leader). */
  | 'unreachable'
  /** The watch cannot resume: etcd compacted (v3) or cleared (v2) the history it needs. */
  | 'history-lost'
  /** The server has no API of the kind asked for (no v3 on etcd 2.x, or v2 switched off). */
  | 'api-unavailable'
  /** ETCD_API=auto has not yet seen which API the platform writes with. */
  | 'api-undecided'
  | 'other';

export class EtcdFailure extends Error {
  constructor(
    readonly code: EtcdFailureCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EtcdFailure';
  }
}

/** Failures an operator has to fix (the credentials, the certificates): `/healthz` reports them. */
export function isConfigurationFailure(failure: EtcdFailure): boolean {
  return failure.code === 'auth' || failure.code === 'permission' || failure.code === 'tls';
}

/** What each code means, in the words the log line starts with. */
export const FAILURE_HINTS: Readonly<Record<EtcdFailureCode, string>> = {
  auth: 'etcd refused the user name or password (check ETCD_USERNAME and ETCD_PASSWORD or ETCD_PASSWORD_FILE)',
  permission: 'the etcd user may not read the load balancer\'s keys (grant its role read access to the prefix)',
  tls: 'the TLS handshake with etcd failed (check ETCD_CA_FILE, ETCD_CERT_FILE and ETCD_KEY_FILE)',
  unreachable: 'no etcd member answered',
  'history-lost': 'etcd no longer has the history the watch needs; reading everything again',
  'api-unavailable': 'the etcd server does not offer that API',
  'api-undecided': 'ETCD_API=auto has not seen which etcd API the platform writes with yet',
  other: 'etcd request failed',
};

/** Patterns of the TLS errors Node (v2) and gRPC (v3) report; both come from OpenSSL. */
const TLS_PATTERNS = [
  /certificate/i, /self[- ]signed/i, /unable to (get|verify)/i, /ssl|tls/i, /handshake/i, /wrong version number/i,
  /ERR_TLS|ERR_SSL|DEPTH_ZERO|UNABLE_TO_VERIFY|CERT_/,
];

/** True when a low-level error message is about the TLS handshake (either side refusing). */
export function looksLikeTls(text: string): boolean {
  return TLS_PATTERNS.some((pattern) => pattern.test(text));
}

/** The first line of an error message, without gRPC's trailing resolution notes. */
export function firstLine(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/\s*Resolution note:.*$/, '').trim();
}
