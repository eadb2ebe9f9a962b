import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';

// KONTENA_LB_PEERS_CERT: the one PEM bundle every replica holds, which authenticates the peer
// sessions that share the rate and connection counters (HAProxy peers over TLS, both ways
// verified). Whoever holds a certificate the bundle's CA accepts can write every replica's
// counters: so the CA must be private to the replicas, and a bundle that cannot be understood
// stops the program instead of leaving peer traffic open.

/** The peers' bundle, checked. Secret (`pem` holds the key): never logged. */
export interface PeerCert {
  /** Certificate, chain and key, as HAProxy's `crt` reads it. */
  readonly pem: string;
  /** The certificates a peer's certificate is verified against (`ca-file`): the self-signed certificate itself, or the bundle's chain up to its root. */
  readonly caPem: string;
  readonly subject: string;
  readonly notAfter: Date;
  readonly fingerprint: string;
}

export class PeerCertError extends Error {}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

/** Node's copy of the public web CAs: a root among them would let anyone with a certificate from it in. Parsed when first needed. */
let publicRoots: ReadonlySet<string> | undefined;
const isPublicRoot = (cert: X509Certificate): boolean => {
  publicRoots ??= new Set(rootCertificates.map((pem) => new X509Certificate(pem).fingerprint256));
  return publicRoots.has(cert.fingerprint256);
};

/**
 * One bundle: a certificate (self-signed, or issued by a private CA whose chain follows it up to the
 * self-signed root), then its private key. Refused: no or two keys, a key that does not match, a
 * chain out of order or without its root, a public root, a certificate expired or not yet valid.
 */
export function parsePeerCert(text: string, now = new Date()): PeerCert {
  const blocks = [...text.matchAll(BLOCK)].map((m) => ({ type: m[1] ?? '', text: m[0] }));
  const certBlocks = blocks.filter((b) => b.type === 'CERTIFICATE');
  const keyBlocks = blocks.filter((b) => /PRIVATE KEY$/.test(b.type));
  if (certBlocks.length === 0) throw new PeerCertError('no PEM certificate in it (a certificate, its CA chain, then its private key)');
  if (keyBlocks.length !== 1) throw new PeerCertError(keyBlocks.length === 0 ? 'no private key in it' : 'more than one private key in it');
  let certs: X509Certificate[];
  try {
    certs = certBlocks.map((b) => new X509Certificate(b.text));
  } catch (error) {
    throw new PeerCertError(`a certificate does not parse (${(error as Error).message})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyBlocks[0]!.text);
  } catch {
    // The parser's message may quote key material: never passed on.
    throw new PeerCertError('the private key does not parse');
  }
  const leaf = certs[0]!;
  if (!leaf.checkPrivateKey(key)) throw new PeerCertError('the private key does not match the first certificate');
  for (let i = 0; i + 1 < certs.length; i++) {
    if (!certs[i]!.checkIssued(certs[i + 1]!)) throw new PeerCertError(`the chain is out of order: certificate ${i + 2} did not issue certificate ${i + 1}`);
  }
  const root = certs.at(-1)!;
  // HAProxy verifies a peer up to a trusted self-signed root: without it in the bundle, no replica could verify another.
  if (!root.checkIssued(root) || !root.verify(root.publicKey)) {
    throw new PeerCertError(
      'it does not end with a self-signed certificate: give a self-signed certificate, or a certificate followed by its CA chain up to the root',
    );
  }
  if (isPublicRoot(root)) {
    throw new PeerCertError('its root is a public CA: any certificate from it would be accepted as a peer; use a self-signed certificate or a private CA');
  }
  for (const cert of certs) {
    const which = cert === leaf ? 'the certificate' : `the CA certificate ${cert.subject.replace(/\n/g, ', ')}`;
    if (new Date(cert.validTo).getTime() <= now.getTime()) throw new PeerCertError(`${which} expired on ${new Date(cert.validTo).toISOString()}`);
    if (new Date(cert.validFrom).getTime() > now.getTime()) throw new PeerCertError(`${which} is not valid before ${new Date(cert.validFrom).toISOString()}`);
  }
  return Object.freeze({
    pem: `${certBlocks.map((b) => b.text).join('\n')}\n${keyBlocks[0]!.text}\n`,
    caPem: `${
      certBlocks.length === 1
        ? certBlocks[0]!.text
        : certBlocks
            .slice(1)
            .map((b) => b.text)
            .join('\n')
    }\n`,
    subject: leaf.subject.replace(/\n/g, ', '),
    notAfter: new Date(leaf.validTo),
    fingerprint: leaf.fingerprint256,
  });
}
