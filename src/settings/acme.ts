import { readFileSync } from 'node:fs';
import { splitDomainList } from '../acme/domains.js';
import { LETS_ENCRYPT_PRODUCTION } from '../acme/issuer.js';
import { ConfigError } from './config-error.js';
import { group, readBySource, setting } from './setting.js';
import { checked, durationMs, parsedBy, text } from './values.js';

// Let's Encrypt over ACME HTTP-01: on when KONTENA_LB_ACME_EMAIL is set.

export interface AcmeSettings {
  readonly email: string;
  readonly directoryUrl: string;
  /** KONTENA_LB_ACME_DOMAINS, split (services with acme=true are added at run time). */
  readonly domains: readonly string[];
  readonly renewDays: number;
  readonly checkIntervalMs: number;
  readonly leaderTtlSeconds: number;
  /** PEM read from KONTENA_LB_ACME_DIRECTORY_CA, trusted for the directory only. */
  readonly directoryCa: string | undefined;
}

const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];

function directoryUrl(env: string, raw: string): string {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${env} must be a URL like ${LETS_ENCRYPT_PRODUCTION}, got ${JSON.stringify(raw)}`);
  }
  // The account key and orders travel to it: plain http only to a directory on this machine (tests, pebble).
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && LOOPBACK.includes(parsed.hostname))) {
    throw new ConfigError(`${env} must use https:// (http:// only on loopback), got ${JSON.stringify(raw)}`);
  }
  return raw;
}

/** A whole number 1-999 of `what`, optionally followed by `unit` (`10s`). */
function wholeNumber(what: string, unit = '') {
  const number = (raw: string) => (unit !== '' && raw.endsWith(unit) ? raw.slice(0, -unit.length) : raw);
  return (env: string) =>
    checked(
      (raw) => /^[0-9]{1,3}$/.test(number(raw)) && Number(number(raw)) >= 1,
      (raw) => `${env} must be a whole number of ${what} (1-999), got ${JSON.stringify(raw)}`,
    ).transform((raw) => Number(number(raw)));
}

export const acmeSettings = group(
  {
    email: setting({
      env: 'KONTENA_LB_ACME_EMAIL',
      flag: 'acme-email',
      schema: (env) =>
        checked(
          (raw) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(raw),
          (raw) => `${env} must be an e-mail address, got ${JSON.stringify(raw)}`,
        ),
      help: "turns on Let's Encrypt (ACME HTTP-01): the account's contact address; setting it agrees to the CA's terms of service",
      docDefault: '— (ACME off)',
      doc: "turns on Let's Encrypt: the ACME account's contact address (setting it agrees to the CA's terms of service)",
    }),
    directoryUrl: setting({
      env: 'KONTENA_LB_ACME_DIRECTORY',
      flag: 'acme-directory',
      default: LETS_ENCRYPT_PRODUCTION,
      schema: (env) => parsedBy((raw) => directoryUrl(env, raw)),
      help: "ACME directory URL (Let's Encrypt staging: https://acme-staging-v02.api.letsencrypt.org/directory)",
      doc: "ACME directory URL; Let's Encrypt staging is `https://acme-staging-v02.api.letsencrypt.org/directory`",
    }),
    domains: setting({
      env: 'KONTENA_LB_ACME_DOMAINS',
      flag: 'acme-domains',
      schema: () => text().transform(splitDomainList),
      help: 'comma-separated names to obtain certificates for, besides the virtual hosts of services with acme=true',
      doc: 'comma-separated names to obtain certificates for, besides the virtual hosts of services with `acme` = `true`',
    }),
    renewDays: setting({
      env: 'KONTENA_LB_ACME_RENEW_DAYS',
      flag: 'acme-renew-days',
      default: '30',
      schema: wholeNumber('days'),
      help: 'renew a certificate when it has fewer days left',
    }),
    checkIntervalMs: setting({
      env: 'KONTENA_LB_ACME_CHECK_INTERVAL',
      flag: 'acme-check-interval',
      default: '1h',
      schema: (env) => durationMs(env, { min: 10_000, max: Number.MAX_SAFE_INTEGER, message: () => `${env} must be at least 10s` }),
      help: 'how often the leader looks at every certificate again (±10%)',
      doc: 'how often the leader looks at every managed certificate again (±10 % jitter)',
    }),
    leaderTtlSeconds: setting({
      env: 'KONTENA_LB_ACME_LEADER_TTL',
      flag: 'acme-leader-ttl',
      default: '10',
      schema: wholeNumber('seconds', 's'),
      help: 'seconds: replicas elect one to order certificates; a dead leader is replaced within this long',
      doc: 'seconds; one replica is elected to order certificates, and a dead leader is replaced within about this long',
    }),
    directoryCaFile: setting({
      env: 'KONTENA_LB_ACME_DIRECTORY_CA',
      flag: 'acme-directory-ca',
      schema: text,
      help: 'a PEM file of CA certificates to trust for the ACME directory (private ACME servers)',
      doc: 'a PEM file of CA certificates to trust for the directory (private ACME servers, pebble)',
    }),
    challenges: readBySource({
      env: 'ACME_CHALLENGE_<token>',
      help: 'an ACME HTTP-01 challenge the platform set up',
      doc: 'an ACME HTTP-01 challenge the platform set up (as with the Kontena load balancer): `/.well-known/acme-challenge/<token>` answers the value, the key authorization',
    }),
  },
  ({ email, domains = [], directoryCaFile, challenges: _challenges, ...values }, context): { acme: AcmeSettings | undefined } => {
    if (email === undefined) {
      if (domains.length > 0) throw new ConfigError("KONTENA_LB_ACME_DOMAINS needs KONTENA_LB_ACME_EMAIL (the ACME account's contact address)");
      return { acme: undefined };
    }
    const directoryCa = directoryCaFile !== undefined && context.readFiles ? readDirectoryCa(directoryCaFile) : undefined;
    return { acme: { email, domains, directoryCa, ...values } };
  },
);

function readDirectoryCa(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`KONTENA_LB_ACME_DIRECTORY_CA: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`KONTENA_LB_ACME_DIRECTORY_CA: ${file} holds no PEM certificate`);
  return pem;
}
