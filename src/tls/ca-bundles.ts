import { createHash, X509Certificate } from 'node:crypto';
import { CA_NAME, CA_NAME_RULE } from '../model/client-auth.js';
import { KEY_PATHS } from '../model/keyspace.js';
import { decryptBundle, isEncrypted, VaultError } from './vault.js';

/**
 * Named CA bundles and revocation lists: what `client_ca`, `client_crl` (issue 16, mTLS) and
 * `backend_ca` (issue 15) refer to. One mechanism for the three kinds, each in its own directory:
 *
 *   etcd  `<path>/client-cas/<name>`, `<path>/client-crls/<name>`, `<path>/backend-cas/<name>`
 *   dir   `KONTENA_LB_CERTS_DIR/client-cas/<name>.pem` ... (sources/ca-files.ts)
 *
 * The values are public (certificates, CRLs): stored as plain PEM. An edgelb vault value is
 * decrypted too, so a bundle imported with the vault key set still reads. Each bundle is checked
 * here (pure) and written by content hash (haproxy/cert-files.ts): a new content is a new file name,
 * so a change shows as a changed service (a reload), and HAProxy never reads a half-changed file.
 */

export type CaKind = 'client-ca' | 'client-crl' | 'backend-ca';

/** Each kind's directory under the load balancer's path (and in the certificate directory, without the '/'). */
export const CA_DIRS: Readonly<Record<CaKind, string>> = Object.freeze({
  'client-ca': KEY_PATHS.clientCas,
  'client-crl': KEY_PATHS.clientCrls,
  'backend-ca': KEY_PATHS.backendCas,
});

/** A checked bundle, as HAProxy will read it. */
export interface CaBundle {
  readonly kind: CaKind;
  readonly name: string;
  /** The etcd key or file it came from. */
  readonly source: string;
  /** Only the CERTIFICATE (or X509 CRL) blocks, one after the other. */
  readonly pem: string;
  /** `<kind>-<name>-<sha256 of pem, 16 hex>.pem`: a change of content is a new file. */
  readonly fileName: string;
}

/**
 * Every usable bundle by `<kind>/<name>`, and what could not be used (key, reason: safe to log;
 * `name`, the `<kind>/<name>` it would have given, when its name was valid).
 */
export interface CaStore {
  readonly bundles: ReadonlyMap<string, CaBundle>;
  readonly rejected: readonly { readonly key: string; readonly reason: string; readonly name?: string }[];
}

export const EMPTY_CA_STORE: CaStore = Object.freeze({ bundles: new Map(), rejected: [] });

export class CaBundleError extends Error {}

export const caStoreKey = (kind: CaKind, name: string): string => `${kind}/${name}`;

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/**
 * The blocks HAProxy should read from a CA bundle or CRL bundle, checked:
 * - CA bundle: every CERTIFICATE parses (node:crypto X509Certificate) and at least one is a CA
 *   (basicConstraints CA:TRUE); a private key is refused (a CA bundle is public: a key there is a
 *   mistake to report, not to copy into the state dir).
 * - CRL bundle: at least one X509 CRL block, each a DER CertificateList (SEQUENCE of tbsCertList,
 *   signatureAlgorithm, signature): HAProxy refuses the whole config on a CRL it cannot read.
 */
export function parseCaBundle(kind: CaKind, text: string): string {
  const blocks = [...text.matchAll(BLOCK)].map((m) => ({ type: m[1] ?? '', body: m[2] ?? '', text: m[0] }));
  if (blocks.some((b) => /PRIVATE KEY$/.test(b.type))) throw new CaBundleError('holds a private key: a CA bundle or CRL holds only public data');
  if (kind === 'client-crl') {
    const crls = blocks.filter((b) => b.type === 'X509 CRL');
    if (crls.length === 0) throw new CaBundleError('no X509 CRL block (PEM "-----BEGIN X509 CRL-----")');
    crls.forEach((b, i) => {
      if (!isCertificateList(Buffer.from(b.body.replace(/\s+/g, ''), 'base64'))) throw new CaBundleError(`CRL ${i + 1} is not a DER CertificateList`);
    });
    return `${crls.map((b) => b.text).join('\n')}\n`;
  }
  const certs = blocks.filter((b) => b.type === 'CERTIFICATE');
  if (certs.length === 0) throw new CaBundleError('no certificate (PEM "-----BEGIN CERTIFICATE-----")');
  let parsed: X509Certificate[];
  try {
    parsed = certs.map((b) => new X509Certificate(b.text));
  } catch (error) {
    throw new CaBundleError(`a certificate does not parse (${(error as Error).message})`);
  }
  if (!parsed.some((c) => c.ca)) throw new CaBundleError('holds no CA certificate (none has basicConstraints CA:TRUE)');
  return `${certs.map((b) => b.text).join('\n')}\n`;
}

/** One bundle read from `source` (a key or file) under `name`: checked and named, or the reason it cannot be used. */
export function caBundleOf(kind: CaKind, name: string, source: string, text: string): CaBundle {
  if (!CA_NAME.test(name)) throw new CaBundleError(`the name ${JSON.stringify(name)} is not valid (${CA_NAME_RULE})`);
  const pem = parseCaBundle(kind, text);
  const hash = createHash('sha256').update(pem).digest('hex').slice(0, 16);
  return Object.freeze({ kind, name, source, pem, fileName: `${kind}-${name}-${hash}.pem` });
}

/**
 * The bundles of an etcd snapshot (keys relative to the load balancer's path, under the three
 * directories). An encrypted value needs the vault key; a plain one is accepted whether it is set
 * or not (a CA certificate is no secret, and whoever can write here can also change `client_ca`).
 */
export function caStoreFromEntries(entries: ReadonlyMap<string, string>, vaultKey: string | undefined): CaStore {
  const bundles = new Map<string, CaBundle>();
  const rejected: { key: string; reason: string }[] = [];
  for (const [kind, dir] of Object.entries(CA_DIRS) as [CaKind, string][]) {
    for (const key of [...entries.keys()].filter((k) => k.startsWith(dir)).sort()) {
      try {
        const stored = entries.get(key)!;
        const text = isEncrypted(stored) ? decryptBundle(stored, vaultKey) : stored;
        const bundle = caBundleOf(kind, key.slice(dir.length), key, text);
        bundles.set(caStoreKey(kind, bundle.name), bundle);
      } catch (error) {
        if (!(error instanceof CaBundleError || error instanceof VaultError)) throw error;
        rejected.push({ key, reason: error.message, ...nameOf(kind, key.slice(dir.length)) });
      }
    }
  }
  return { bundles, rejected };
}

/**
 * The bundles of the certificate directory: `<dir>/client-cas/<name>.pem`..., given as relative
 * path → content. A name in etcd wins over the same name in the directory (as the vault's
 * certificates come before the directory's); both are then reported.
 */
export function caStoreFromFiles(files: ReadonlyMap<string, string>): CaStore {
  const bundles = new Map<string, CaBundle>();
  const rejected: { key: string; reason: string }[] = [];
  for (const [kind, dir] of Object.entries(CA_DIRS) as [CaKind, string][]) {
    for (const file of [...files.keys()].filter((f) => f.startsWith(dir) && f.endsWith('.pem')).sort()) {
      try {
        const bundle = caBundleOf(kind, file.slice(dir.length, -'.pem'.length), file, files.get(file)!);
        bundles.set(caStoreKey(kind, bundle.name), bundle);
      } catch (error) {
        if (!(error instanceof CaBundleError)) throw error;
        rejected.push({ key: file, reason: error.message, ...nameOf(kind, file.slice(dir.length, -'.pem'.length)) });
      }
    }
  }
  return { bundles, rejected };
}

/** `name` of a rejection whose name is valid (its content was not). */
function nameOf(kind: CaKind, name: string): { name?: string } {
  return CA_NAME.test(name) ? { name: caStoreKey(kind, name) } : {};
}

/**
 * The stores in precedence order (etcd, then the directory): the first to hold a name gives it. A
 * name the first holds but cannot use is not taken from a later one: a broken new CA or CRL would
 * otherwise bring back the older trust it replaced, rather than close the services that name it.
 */
export function mergeCaStores(stores: readonly CaStore[]): CaStore {
  const nonEmpty = stores.filter((s) => s.bundles.size > 0 || s.rejected.length > 0);
  if (nonEmpty.length <= 1) return nonEmpty[0] ?? EMPTY_CA_STORE;
  const bundles = new Map<string, CaBundle>();
  const unusable = new Map<string, string>();
  const rejected: CaStore['rejected'][number][] = [];
  for (const store of nonEmpty) {
    rejected.push(...store.rejected);
    for (const [key, bundle] of store.bundles) {
      const first = bundles.get(key);
      const broken = unusable.get(key);
      if (first) rejected.push({ key: bundle.source, reason: `not used: ${first.source} has the same name` });
      else if (broken) rejected.push({ key: bundle.source, reason: `not used: ${broken} of the same name could not be used` });
      else bundles.set(key, bundle);
    }
    for (const r of store.rejected) if (r.name !== undefined && !bundles.has(r.name) && !unusable.has(r.name)) unusable.set(r.name, r.key);
  }
  return { bundles, rejected };
}

/**
 * Whether `der` is one DER SEQUENCE of a SEQUENCE, a SEQUENCE and a BIT STRING, filling it
 * exactly (RFC 5280 5.1, CertificateList). A shape check: HAProxy and OpenSSL check the rest.
 */
function isCertificateList(der: Buffer): boolean {
  const outer = derItem(der, 0);
  if (outer?.tag !== 0x30 || outer.end !== der.length) return false;
  const tags: number[] = [];
  for (let at = outer.start; at < outer.end; ) {
    const item = derItem(der, at);
    if (!item || item.end > outer.end) return false;
    tags.push(item.tag);
    at = item.end;
  }
  return tags.join(',') === '48,48,3';
}

function derItem(der: Buffer, at: number): { tag: number; start: number; end: number } | undefined {
  if (at + 2 > der.length) return undefined;
  const tag = der[at]!;
  let length = der[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4 || start + bytes > der.length) return undefined;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]!;
    start += bytes;
  }
  return start + length <= der.length ? { tag, start, end: start + length } : undefined;
}

/** mergeCaStores with memory: the same merged object while the stores are the same objects (the resolution caches on it). */
export class CaStoreMerge {
  private last: { stores: readonly (CaStore | undefined)[]; merged: CaStore } | undefined;

  merge(...stores: (CaStore | undefined)[]): CaStore {
    const last = this.last;
    if (last && last.stores.length === stores.length && last.stores.every((s, i) => s === stores[i])) return last.merged;
    const merged = mergeCaStores(stores.filter((s): s is CaStore => s !== undefined));
    this.last = { stores, merged };
    return merged;
  }
}
