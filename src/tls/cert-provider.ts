import type { RawCert } from './bundle.js';
import type { CaStore } from './ca-bundles.js';

/**
 * The certificate sources, in the order their bundles are handed to selection. ACME is not one
 * of them: it stores what it obtains in the vault (its storage), so its certificates are offered
 * by the vault provider like any other bundle there.
 */
export const CERT_SOURCES = ['env', 'vault', 'dir'] as const;
export type CertSourceKind = (typeof CERT_SOURCES)[number];

/** A source's whole current set of certificates: each offer replaces that source's previous one. */
export interface CertOffer {
  readonly kind: CertSourceKind;
  readonly certs: readonly RawCert[];
  /** What the source could not use (a vault entry that does not decrypt...), safe to log. */
  readonly rejected: readonly { readonly key: string; readonly reason: string }[];
  /** The directory's CA bundles (`client-cas/<name>.pem`...: sources/ca-files.ts), offered with its certificates. */
  readonly cas?: CaStore;
}

/** A source that pushes offers when its certificates change (the environment once, the directory on change). */
export interface CertProvider {
  readonly kind: CertSourceKind;
  /** Starts offering; resolves once the first offer was made. */
  start(offer: (offer: CertOffer) => void): Promise<void>;
  stop(): Promise<void>;
}

/** Certificates fixed for the life of the process (SSL_CERTS). */
export function fixedCertProvider(kind: CertSourceKind, certs: readonly RawCert[]): CertProvider {
  return {
    kind,
    start: async (offer) => offer({ kind, certs, rejected: [] }),
    stop: async () => undefined,
  };
}

/** The offers' certificates in source order: the same arrays while the offers are the same (selection caches on them). */
export function certsByKind(offers: ReadonlyMap<CertSourceKind, CertOffer>): (readonly RawCert[])[] {
  return CERT_SOURCES.map((kind) => offers.get(kind)?.certs ?? []);
}
