import { ConfigError } from './config-error.js';

/** What HAProxy's `ssl-min-ver` takes (SSLv3 is left out: broken, and OpenSSL 3 cannot speak it). */
export const TLS_VERSIONS = ['TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];
export const DEFAULT_TLS_MIN_VERSION: TlsVersion = 'TLSv1.2';

/**
 * Every TLS 1.3 cipher suite there is (RFC 8446, B.4; OpenSSL's names). HAProxy refuses a bind
 * whose `ciphersuites` holds none OpenSSL knows, and OpenSSL drops an unknown one silently: a
 * typo in KONTENA_LB_SSL_CIPHERSUITES would take every config down, or a suite away unnoticed.
 */
export const TLS13_SUITES = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_CCM_SHA256',
  'TLS_AES_128_CCM_8_SHA256',
];

/** Mozilla's "intermediate" TLS 1.2 suite: forward secrecy and AEAD ciphers only. */
const INTERMEDIATE_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
];
export const DEFAULT_CIPHERS = INTERMEDIATE_CIPHERS.join(':');

/**
 * Mozilla's "old" suite (server-side TLS guidelines 5.7), for clients that only speak TLS 1.0
 * or 1.1: those versions have no AEAD ciphers, so the intermediate list would offer them
 * nothing. `@SECLEVEL=0` because OpenSSL 3 (Debian 12) refuses TLS 1.0 and 1.1 at its default
 * security level 1 and above (their handshake signatures use SHA-1/MD5).
 */
export const OLD_CLIENT_CIPHERS = [
  ...INTERMEDIATE_CIPHERS,
  'DHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-SHA256',
  'ECDHE-RSA-AES128-SHA256',
  'ECDHE-ECDSA-AES128-SHA',
  'ECDHE-RSA-AES128-SHA',
  'ECDHE-ECDSA-AES256-SHA384',
  'ECDHE-RSA-AES256-SHA384',
  'ECDHE-ECDSA-AES256-SHA',
  'ECDHE-RSA-AES256-SHA',
  'DHE-RSA-AES128-SHA256',
  'DHE-RSA-AES256-SHA256',
  'AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-SHA256',
  'AES256-SHA256',
  'AES128-SHA',
  'AES256-SHA',
  'DES-CBC3-SHA',
  '@SECLEVEL=0',
].join(':');

export function parseTlsMinVersion(raw: string): TlsVersion {
  // Accept `tlsv1.0` and `TLSv1` spellings too: OpenSSL and Node write them differently.
  const normalized = /^tlsv1(\.[0-3])?$/i.test(raw) ? `TLSv1${raw.length === 5 ? '.0' : raw.slice(5)}` : raw;
  if ((TLS_VERSIONS as readonly string[]).includes(normalized)) return normalized as TlsVersion;
  throw new ConfigError(`KONTENA_LB_SSL_MIN_VERSION must be one of ${TLS_VERSIONS.join(', ')}, got ${JSON.stringify(raw)}`);
}

/** The cipher list when KONTENA_LB_SSL_CIPHERS is not set: one that works with the minimum version. */
export function defaultCiphersFor(minVersion: TlsVersion): string {
  return minVersion === 'TLSv1.0' || minVersion === 'TLSv1.1' ? OLD_CLIENT_CIPHERS : DEFAULT_CIPHERS;
}
