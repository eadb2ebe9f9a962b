import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import type { CertSourceKind } from './cert-provider.js';

/** Where a certificate came from, for logs and `edgelb cert list`: a provider, or ACME (which stores in the vault). */
export interface CertSource {
  readonly kind: CertSourceKind | 'acme';
  /** The variable, etcd key or file it was read from. */
  readonly ref: string;
}

/** A validated certificate bundle: leaf, chain in order, and the matching key. */
export interface CertBundle {
  /** Stable id derived from the source, used as the file name in the state dir. */
  readonly id: string;
  readonly source: CertSource;
  readonly subject: string;
  /** DNS names the leaf covers (subjectAltName, or CN when there is none), lower-cased. */
  readonly names: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SHA-256 of the leaf, to tell a replacement from the same certificate. */
  readonly fingerprint: string;
  /** Certificate(s) followed by the key, as HAProxy reads it. Secret: never log. */
  readonly pem: string;
}

export class BundleError extends Error {}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

/**
 * Splits concatenated bundles (SSL_CERTS): each bundle ends with its private key,
 * the Kontena convention.
 */
export function splitBundles(text: string): string[] {
  const bundles: string[] = [];
  let current: string[] = [];
  for (const match of text.matchAll(BLOCK)) {
    current.push(match[0]);
    if (/PRIVATE KEY$/.test(match[1] ?? '')) {
      bundles.push(current.join('\n'));
      current = [];
    }
  }
  if (current.length > 0) bundles.push(current.join('\n'));
  return bundles;
}

/** Parses and checks one PEM bundle: it parses, the key matches the leaf, and the chain is in order. */
export function parseBundle(pemText: string, source: CertSource, now = new Date()): CertBundle {
  const blocks = [...pemText.matchAll(BLOCK)].map((m) => ({ type: m[1] ?? '', text: m[0] }));
  const certBlocks = blocks.filter((b) => b.type === 'CERTIFICATE');
  const keyBlocks = blocks.filter((b) => /PRIVATE KEY$/.test(b.type));
  if (certBlocks.length === 0) throw new BundleError('no certificate in the bundle');
  if (keyBlocks.length !== 1) throw new BundleError(keyBlocks.length === 0 ? 'no private key in the bundle' : 'more than one private key in the bundle');

  let certs: X509Certificate[];
  try {
    certs = certBlocks.map((b) => new X509Certificate(b.text));
  } catch (error) {
    throw new BundleError(`a certificate does not parse (${(error as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyBlocks[0]!.text);
  } catch {
    // The parser's message may quote key material; never pass it on.
    throw new BundleError('the private key does not parse');
  }
  const leaf = certs[0]!;
  if (!leaf.checkPrivateKey(key)) throw new BundleError('the private key does not match the certificate');
  for (let i = 0; i + 1 < certs.length; i++) {
    if (!certs[i]!.checkIssued(certs[i + 1]!)) {
      throw new BundleError(`the chain is out of order: certificate ${i + 2} did not issue certificate ${i + 1}`);
    }
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (notBefore.getTime() > now.getTime() + 24 * 3600_000) throw new BundleError(`the certificate is not valid before ${notBefore.toISOString()}`);
  const names = namesOf(leaf);
  if (names.length === 0) throw new BundleError('the certificate names no DNS host (no subjectAltName DNS entry or CN)');

  return Object.freeze({
    id: bundleId(source),
    source,
    subject: leaf.subject.replace(/\n/g, ', '),
    names: Object.freeze(names),
    notBefore,
    notAfter,
    fingerprint: leaf.fingerprint256,
    pem: `${certBlocks.map((b) => b.text).join('\n')}\n${keyBlocks[0]!.text}\n`,
  });
}

export function isExpired(bundle: CertBundle, now = new Date()): boolean {
  return bundle.notAfter.getTime() <= now.getTime();
}

function namesOf(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  // Without a subjectAltName the whole CN is the one name (a CN like "Acme Corp" then names no host).
  const names = san
    ? san
        .split(/,\s*/)
        .filter((e) => e.startsWith('DNS:'))
        .map((e) => e.slice(4).toLowerCase())
    : [(/(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1] ?? '').trim().toLowerCase()];
  return [...new Set(names)].filter((n) => /^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(n));
}

/**
 * parseBundle with memory: a bundle is parsed again only when its source or content changes,
 * so an apply with a thousand certificates does not re-parse a thousand keys. Entries not
 * asked for in the last round are forgotten.
 */
export class BundleParser {
  private cache = new Map<string, CertBundle | BundleError>();
  private nextCache = new Map<string, CertBundle | BundleError>();

  parse(raw: RawCert, now: Date): CertBundle {
    const key = `${raw.source.kind}\u0000${raw.source.ref}\u0000${createHash('sha256').update(raw.pem).digest('hex')}`;
    let result = this.cache.get(key) ?? this.nextCache.get(key);
    if (!result) {
      try {
        result = parseBundle(raw.pem, raw.source, now);
      } catch (error) {
        if (!(error instanceof BundleError)) throw error;
        result = error;
      }
    }
    this.nextCache.set(key, result);
    if (result instanceof BundleError) throw result;
    return result;
  }

  /** Ends a round: only what this round used is kept. */
  endRound(): void {
    this.cache = this.nextCache;
    this.nextCache = new Map();
  }
}

/** A file-name-safe id that stays the same for the same source. */
function bundleId(source: CertSource): string {
  const readable = source.ref
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/^[_.]+/, '')
    .slice(-40);
  const hash = createHash('sha256').update(`${source.kind}:${source.ref}`).digest('hex').slice(0, 8);
  return `${source.kind}-${readable}-${hash}`;
}

/** A bundle as a source delivered it, before validation. */
export interface RawCert {
  readonly source: CertSource;
  readonly pem: string;
}
