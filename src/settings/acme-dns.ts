import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import type { ChallengeType } from '../acme/domains.js';
import { type DnsServer, parseServer } from '../acme/dns-wire.js';
import { TSIG_ALGORITHMS, type TsigAlgorithm } from '../acme/tsig.js';
import { ConfigError } from './config-error.js';
import { group, type Setting, setting } from './setting.js';
import { checked, durationMs, parsedBy, text } from './values.js';

// ACME DNS-01 (wildcards, names the CA cannot reach over HTTP): how the TXT record is published
// (an executable hook, or RFC 2136 updates signed with TSIG) and where edgelb waits to see it.

export type DnsPublisherSettings =
  | { readonly kind: 'hook'; readonly path: string; readonly timeoutMs: number }
  | {
      readonly kind: 'rfc2136';
      readonly server: DnsServer;
      readonly keyName: string;
      readonly algorithm: TsigAlgorithm;
      /** Decoded; never logged. */
      readonly secret: Buffer;
    };

export interface AcmeDnsSettings {
  readonly challenge: ChallengeType;
  /** Undefined: no DNS-01 (wildcards are reported, not ordered). */
  readonly publisher: DnsPublisherSettings | undefined;
  readonly resolvers: readonly DnsServer[] | undefined;
  readonly propagationTimeoutMs: number;
}

/**
 * The environment variables a DNS hook does not get: edgelb's secrets, i.e. its environment-only
 * settings (a secret has no flag: ETCD_PASSWORD, KONTENA_LB_VAULT_KEY, the TSIG secret, SSL_CERTS)
 * and the members of such families present in `envNames` (SSL_CERT_<name>).
 */
export function withheldFromHook(settings: readonly Setting[], envNames: readonly string[]): string[] {
  const secrets = settings.filter((s) => s.flag === undefined);
  const exact = secrets.filter((s) => !s.env.includes('<')).map((s) => s.env);
  const families = secrets.filter((s) => s.env.includes('<')).map((s) => s.env.slice(0, s.env.indexOf('<')));
  return [...new Set([...exact, ...envNames.filter((name) => families.some((prefix) => name.startsWith(prefix)))])].sort();
}

function servers(env: string, raw: string, many: boolean): DnsServer[] {
  const parts = raw.split(/[\s,]+/).filter(Boolean);
  const parsed = parts.map((part) => parseServer(part));
  if (parts.length === 0 || parsed.some((s) => s === undefined) || (!many && parts.length > 1)) {
    throw new ConfigError(
      `${env} must be ${many ? 'a comma-separated list of' : 'one'} host:port (port 53 by default, IPv6 as [::1]:53), got ${JSON.stringify(raw)}`,
    );
  }
  return parsed as DnsServer[];
}

export const acmeDnsSettings = group(
  {
    challenge: setting({
      env: 'KONTENA_LB_ACME_CHALLENGE',
      flag: 'acme-challenge',
      default: 'http-01',
      schema: (env) =>
        checked(
          (raw) => raw === 'http-01' || raw === 'dns-01',
          (raw) => `${env} must be http-01 or dns-01, got ${JSON.stringify(raw)}`,
        ),
      help: 'the ACME challenge for exact names: http-01 or dns-01 (wildcards always use dns-01)',
      doc: 'the ACME challenge for exact names, `http-01` or `dns-01` (needs a DNS publisher, below); wildcards always use DNS-01',
    }),
    hook: setting({
      env: 'KONTENA_LB_ACME_DNS_HOOK',
      flag: 'acme-dns-hook',
      schema: text,
      help: 'an executable publishing DNS-01 records: called as <hook> present|cleanup <fqdn> <value>',
      doc: "DNS-01 through an executable (lego's `exec` convention): called as `<hook> present <fqdn> <value>` and `<hook> cleanup <fqdn> <value>`; exit 0 is success (see [DNS-01](#dns-01-wildcards))",
    }),
    hookTimeoutMs: setting({
      env: 'KONTENA_LB_ACME_DNS_HOOK_TIMEOUT',
      flag: 'acme-dns-hook-timeout',
      default: '60s',
      schema: (env) => durationMs(env, { min: 1000, max: 3600_000, message: () => `${env} must be between 1s and 1h` }),
      help: 'how long one call of the DNS hook may take; then its process group is killed and the attempt fails',
    }),
    rfc2136Server: setting({
      env: 'KONTENA_LB_ACME_RFC2136_SERVER',
      flag: 'acme-rfc2136-server',
      schema: (env) => parsedBy((raw) => servers(env, raw, false)[0]!),
      help: 'DNS-01 through RFC 2136 dynamic updates to this primary server (host:port), signed with the TSIG key below',
      doc: 'DNS-01 through RFC 2136 dynamic updates (BIND, Knot, PowerDNS) sent to this primary server, `host:port` (port 53 by default), signed with the TSIG key below',
    }),
    tsigKey: setting({
      env: 'KONTENA_LB_ACME_RFC2136_TSIG_KEY',
      flag: 'acme-rfc2136-tsig-key',
      schema: text,
      help: 'the TSIG key name (as in the server\'s key "<name>" statement)',
      doc: 'the TSIG key\'s name, as in the server\'s `key "<name>"` statement',
    }),
    tsigSecretFile: setting({
      env: 'KONTENA_LB_ACME_RFC2136_TSIG_SECRET_FILE',
      flag: 'acme-rfc2136-tsig-secret-file',
      schema: text,
      help: 'a file holding the TSIG secret (base64, as in the key statement)',
      doc: 'a file holding the TSIG secret, base64 as in the key statement (a mounted secret; white space ignored)',
    }),
    // Secret: environment only, never logged.
    tsigSecret: setting({
      env: 'KONTENA_LB_ACME_RFC2136_TSIG_SECRET',
      schema: text,
      help: 'the TSIG secret (base64), when it cannot come from a file',
      doc: 'the TSIG secret (base64), when it cannot come from a file; never logged, never in a flag, not passed to a DNS hook',
    }),
    tsigAlgorithm: setting({
      env: 'KONTENA_LB_ACME_RFC2136_TSIG_ALGORITHM',
      flag: 'acme-rfc2136-tsig-algorithm',
      default: 'hmac-sha256',
      schema: (env) =>
        checked(
          (raw) => Object.hasOwn(TSIG_ALGORITHMS, raw.toLowerCase()),
          (raw) => `${env} must be one of ${Object.keys(TSIG_ALGORITHMS).join(', ')}, got ${JSON.stringify(raw)}`,
        ).transform((raw) => raw.toLowerCase() as TsigAlgorithm),
      help: 'the TSIG algorithm: hmac-sha256, hmac-sha1 or hmac-sha512',
      doc: 'the TSIG algorithm: `hmac-sha256`, `hmac-sha1` or `hmac-sha512`',
    }),
    resolvers: setting({
      env: 'KONTENA_LB_ACME_DNS_RESOLVERS',
      flag: 'acme-dns-resolvers',
      schema: (env) => parsedBy((raw) => servers(env, raw, true)),
      docDefault: "— (the zone's authoritative servers)",
      help: "DNS servers (host:port, comma-separated) that must show a DNS-01 record before the CA is asked; default the zone's authoritative servers",
      doc: "DNS servers (`host:port`, comma-separated) that must show a DNS-01 record before the CA is asked to validate; by default the zone's authoritative servers, found through the system resolver",
    }),
    propagationTimeoutMs: setting({
      env: 'KONTENA_LB_ACME_DNS_PROPAGATION_TIMEOUT',
      flag: 'acme-dns-propagation-timeout',
      default: '2m',
      schema: (env) => durationMs(env, { min: 1000, max: 3600_000, message: () => `${env} must be between 1s and 1h` }),
      help: 'how long to wait for a DNS-01 record to be visible; then the attempt fails and backs off',
    }),
  },
  (values, context): { acmeDns: AcmeDnsSettings } => {
    const { challenge, hook, hookTimeoutMs, rfc2136Server, tsigKey, tsigSecret, tsigSecretFile, tsigAlgorithm, resolvers, propagationTimeoutMs } = values;
    const anyDns = [hook, rfc2136Server, tsigKey, tsigSecret, tsigSecretFile, resolvers].some((v) => v !== undefined) || challenge === 'dns-01';
    if (anyDns && context.text('KONTENA_LB_ACME_EMAIL') === undefined)
      throw new ConfigError('the ACME DNS-01 settings need KONTENA_LB_ACME_EMAIL (ACME is off without it)');
    if (hook !== undefined && rfc2136Server !== undefined) throw new ConfigError('set KONTENA_LB_ACME_DNS_HOOK or KONTENA_LB_ACME_RFC2136_SERVER, not both');
    let publisher: DnsPublisherSettings | undefined;
    if (hook !== undefined) {
      if (context.readFiles) checkExecutable(hook);
      publisher = { kind: 'hook', path: hook, timeoutMs: hookTimeoutMs };
    } else if (rfc2136Server !== undefined || tsigKey !== undefined || tsigSecret !== undefined || tsigSecretFile !== undefined) {
      if (rfc2136Server === undefined) throw new ConfigError('the TSIG key settings need KONTENA_LB_ACME_RFC2136_SERVER (the primary server to update)');
      if (tsigKey === undefined) throw new ConfigError('KONTENA_LB_ACME_RFC2136_SERVER needs KONTENA_LB_ACME_RFC2136_TSIG_KEY (the key name)');
      if (tsigSecret !== undefined && tsigSecretFile !== undefined) {
        throw new ConfigError('set KONTENA_LB_ACME_RFC2136_TSIG_SECRET or KONTENA_LB_ACME_RFC2136_TSIG_SECRET_FILE, not both');
      }
      if (tsigSecret === undefined && tsigSecretFile === undefined) {
        throw new ConfigError(
          'KONTENA_LB_ACME_RFC2136_SERVER needs the TSIG secret: KONTENA_LB_ACME_RFC2136_TSIG_SECRET_FILE or KONTENA_LB_ACME_RFC2136_TSIG_SECRET',
        );
      }
      const secretText = tsigSecret ?? (context.readFiles ? readSecretFile(tsigSecretFile!) : 'AAAA');
      const source = tsigSecret !== undefined ? 'KONTENA_LB_ACME_RFC2136_TSIG_SECRET' : `KONTENA_LB_ACME_RFC2136_TSIG_SECRET_FILE (${tsigSecretFile})`;
      publisher = { kind: 'rfc2136', server: rfc2136Server, keyName: tsigKey, algorithm: tsigAlgorithm, secret: decodeSecret(secretText, source) };
    }
    if (challenge === 'dns-01' && publisher === undefined) {
      throw new ConfigError('KONTENA_LB_ACME_CHALLENGE=dns-01 needs a DNS publisher: KONTENA_LB_ACME_DNS_HOOK or KONTENA_LB_ACME_RFC2136_SERVER');
    }
    return { acmeDns: { challenge: challenge as ChallengeType, publisher, resolvers, propagationTimeoutMs } };
  },
);

function checkExecutable(file: string): void {
  try {
    if (!statSync(file).isFile()) throw new ConfigError(`KONTENA_LB_ACME_DNS_HOOK: ${file} is not a file`);
    accessSync(file, constants.X_OK);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(
      `KONTENA_LB_ACME_DNS_HOOK: ${file} is not an executable file (${code === 'EACCES' ? 'not executable: chmod +x it' : (code ?? (error as Error).message)})`,
    );
  }
}

function readSecretFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `KONTENA_LB_ACME_RFC2136_TSIG_SECRET_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
}

/** The base64 secret, decoded; the message names where it came from, never the secret. */
function decodeSecret(raw: string, source: string): Buffer {
  const clean = raw.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(clean) || clean.length % 4 !== 0)
    throw new ConfigError(`${source}: the TSIG secret is not base64 (as in the key statement)`);
  return Buffer.from(clean, 'base64');
}
