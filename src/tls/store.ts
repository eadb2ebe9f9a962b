import { createHash } from 'node:crypto';
import { compare } from '../model/parse.js';
import { BundleError, isExpired, parseBundle, type BundleParser, type CertBundle, type RawCert } from './bundle.js';

export interface CertRejection {
  readonly source: string;
  readonly reason: string;
}

/** One crt-list line: a bundle and the SNI names it is chosen for. */
export interface ServedCert {
  readonly bundle: CertBundle;
  readonly sni: readonly string[];
  readonly expired: boolean;
}

/** What the HTTPS listener serves; `served[0]` is the default certificate. */
export interface CertSet {
  readonly served: readonly ServedCert[];
  readonly rejected: readonly CertRejection[];
  readonly warnings: readonly string[];
  /** Every valid bundle, served or not, for `edgelb cert list` and expiry metrics. */
  readonly all: readonly CertBundle[];
  /** Host names with a client-certificate check (issue 16): crt-list lines of their own (tls/client-auth-lines.ts). */
  readonly clientAuth?: readonly ClientAuthCert[];
  /** The CA bundles and CRLs HAProxy reads (client_ca, client_crl, backend_ca), by content-hash file name. */
  readonly caFiles?: readonly { readonly file: string; readonly pem: string }[];
}

/** A crt-list line that asks for a client certificate: the bundle served for `sni`, and the check. */
export interface ClientAuthCert {
  readonly bundle: CertBundle;
  readonly sni: string;
  readonly verify: 'required' | 'optional';
  readonly caFile: string;
  readonly crlFile?: string;
}

export const EMPTY_CERT_SET: CertSet = Object.freeze({ served: [], rejected: [], warnings: [], all: [] });

/**
 * Merges the certificates of every source into what HAProxy serves. Pure.
 * For each host name the best bundle wins: one that has not expired, then the one valid the
 * longest, then the stable id order. A bundle serves only the names it wins, written as SNI
 * filters on its crt-list line, so HAProxy never has to choose between two certificates for
 * a name. An expired bundle is served only for names no valid bundle covers.
 */
export function selectCertificates(raws: readonly RawCert[], options: { defaultCert?: string; now?: Date; parser?: BundleParser } = {}): CertSet {
  const now = options.now ?? new Date();
  const rejected: CertRejection[] = [];
  const warnings: string[] = [];
  const byId = new Map<string, CertBundle>();
  for (const raw of raws) {
    try {
      const bundle = options.parser ? options.parser.parse(raw, now) : parseBundle(raw.pem, raw.source, now);
      byId.set(bundle.id, bundle);
    } catch (error) {
      if (!(error instanceof BundleError)) throw error;
      rejected.push({ source: `${raw.source.kind}:${raw.source.ref}`, reason: error.message });
    }
  }
  options.parser?.endRound();
  const bundles = [...byId.values()].sort((a, b) => compare(a.id, b.id));

  const winner = new Map<string, CertBundle>();
  for (const bundle of bundles) {
    for (const name of bundle.names) {
      const current = winner.get(name);
      if (!current || better(bundle, current, now)) winner.set(name, bundle);
    }
  }
  const sniOf = new Map<string, string[]>();
  for (const [name, bundle] of [...winner].sort(([a], [b]) => compare(a, b))) {
    sniOf.set(bundle.id, [...(sniOf.get(bundle.id) ?? []), name]);
  }

  // The default, unless named: the first valid bundle in source order (environment, vault, ACME,
  // directory) then by id, so dropping a file into the directory does not change it.
  const bySource = [...bundles].sort((a, b) => SOURCE_RANK[a.source.kind] - SOURCE_RANK[b.source.kind] || compare(a.id, b.id));
  const fallback = bySource.find((b) => !isExpired(b, now) && sniOf.has(b.id)) ?? bySource.find((b) => sniOf.has(b.id));
  let defaultBundle = fallback;
  if (options.defaultCert) {
    const named = bundles.find((b) => matchesName(b, options.defaultCert!));
    if (named) defaultBundle = named;
    else warnings.push(`KONTENA_LB_DEFAULT_CERT ${JSON.stringify(options.defaultCert)} matches no valid certificate; using ${fallback?.id ?? 'none'}`);
  }

  const served: ServedCert[] = [];
  const ordered = defaultBundle ? [defaultBundle, ...bundles.filter((b) => b !== defaultBundle)] : bundles;
  for (const bundle of ordered) {
    const sni = sniOf.get(bundle.id) ?? [];
    if (sni.length === 0 && bundle !== defaultBundle) continue;
    const expired = isExpired(bundle, now);
    if (expired) warnings.push(`serving expired certificate ${bundle.id} for ${sni.join(', ') || 'the default'}: nothing better covers it`);
    served.push({ bundle, sni, expired });
  }
  return { served, rejected, warnings, all: bundles };
}

const SOURCE_RANK: Record<CertBundle['source']['kind'], number> = { env: 0, vault: 1, acme: 2, dir: 3 };

function better(a: CertBundle, b: CertBundle, now: Date): boolean {
  const aExpired = isExpired(a, now);
  const bExpired = isExpired(b, now);
  if (aExpired !== bExpired) return !aExpired;
  if (a.notAfter.getTime() !== b.notAfter.getTime()) return a.notAfter.getTime() > b.notAfter.getTime();
  return compare(a.id, b.id) < 0;
}

/** KONTENA_LB_DEFAULT_CERT names a certificate by its vault name, env variable, file name or a host it covers. */
function matchesName(bundle: CertBundle, wanted: string): boolean {
  const ref = bundle.source.ref;
  const short = ref
    .replace(/^certs\//, '')
    .replace(/^SSL_CERT_/, '')
    .replace(/^.*\//, '')
    .replace(/\.pem$/, '');
  return ref === wanted || short === wanted || bundle.names.includes(wanted.toLowerCase());
}

/** Whether two cert sets would make HAProxy serve exactly the same thing. */
export function sameServed(a: CertSet, b: CertSet): boolean {
  const key = (set: CertSet) =>
    [
      ...set.served.map((s) => `${s.bundle.id}|${pemHash(s.bundle)}|${s.sni.join(',')}`),
      ...(set.clientAuth ?? []).map((c) => `${c.bundle.id}|${pemHash(c.bundle)}|${c.sni}|${c.verify}|${c.caFile}|${c.crlFile ?? ''}`),
    ].join('\n');
  return key(a) === key(b);
}

export function pemHash(bundle: CertBundle): string {
  return createHash('sha256').update(bundle.pem).digest('hex');
}
