import { CodedError } from '../errors.js';
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

export class EtcdFailure extends CodedError<EtcdFailureCode> {}

/** Failures an operator has to fix (the credentials, the certificates): `/healthz` reports them. */
export function isConfigurationFailure(failure: EtcdFailure): boolean {
  return failure.code === 'auth' || failure.code === 'permission' || failure.code === 'tls';
}

/** What each code means, in the words the log line starts with. */
export const FAILURE_HINTS: Readonly<Record<EtcdFailureCode, string>> = {
  auth: 'etcd refused the user name or password (check ETCD_USERNAME and ETCD_PASSWORD or ETCD_PASSWORD_FILE)',
  permission: "the etcd user may not read the load balancer's keys (grant its role read access to the prefix)",
  tls: 'the TLS handshake with etcd failed (check ETCD_CA_FILE, ETCD_CERT_FILE and ETCD_KEY_FILE)',
  unreachable: 'no etcd member answered',
  'history-lost': 'etcd no longer has the history the watch needs; reading everything again',
  'api-unavailable': 'the etcd server does not offer that API',
  'api-undecided': 'ETCD_API=auto has not seen which etcd API the platform writes with yet',
  other: 'etcd request failed',
};

/** Patterns of the TLS errors Node (v2) and gRPC (v3) report; both come from OpenSSL. */
const TLS_PATTERNS = [
  /certificate/i,
  /self[- ]signed/i,
  /unable to (get|verify)/i,
  /ssl|tls/i,
  /handshake/i,
  /wrong version number/i,
  /ERR_TLS|ERR_SSL|DEPTH_ZERO|UNABLE_TO_VERIFY|CERT_/,
];

/** True when a low-level error message is about the TLS handshake (either side refusing). */
export function looksLikeTls(text: string): boolean {
  return TLS_PATTERNS.some((pattern) => pattern.test(text));
}

/** A refusal of edgelb's certificate: etcd (Go) ends the handshake with bad_certificate both when none comes and when it does not chain to its CA. */
const CLIENT_REFUSED = /alert (bad certificate|certificate required|unknown ca|certificate (unknown|expired|revoked|unsupported))/i;
/** Node's and gRPC's words (and codes) for a server certificate edgelb cannot verify. */
const SERVER_UNTRUSTED =
  /unable to (verify|get (local )?issuer)|self[- ]signed|certificate has expired|Hostname\/IP does not match|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME/i;

/**
 * A TLS failure as one line that says which side refused and which setting to look at, then
 * OpenSSL's own words without its error-stack prefix and source location: gRPC hands on
 * `80..:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/
 * openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42`. `code` is Node's error code, when there is one.
 */
export function describeTls(message: string, code = ''): string {
  const words = firstLine(message)
    .replace(/\b[0-9A-F]+:error:[0-9A-F]+:SSL routines:[\w ]*:/g, '')
    .replace(/:[^\s:]*\.c:\d+:/g, ', ')
    .replace(/\.$/, '');
  if (CLIENT_REFUSED.test(words) || /ALERT_BAD_CERTIFICATE|ALERT_CERTIFICATE_REQUIRED/.test(code))
    return `etcd refused edgelb's client certificate, or its lack of one (ETCD_CERT_FILE and ETCD_KEY_FILE must hold a certificate issued by a CA the etcd members trust): ${words}`;
  if (SERVER_UNTRUSTED.test(`${code} ${words}`))
    return `edgelb does not trust the etcd server's certificate (ETCD_CA_FILE must hold the CA that issued it): ${words}`;
  return words;
}

/** The first line of an error message, without gRPC's trailing resolution notes. */
export function firstLine(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/\s*Resolution note:.*$/, '').trim();
}
