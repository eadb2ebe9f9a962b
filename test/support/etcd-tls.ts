import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ClientTls } from './etcd-access.js';
import { makeCa, makeLeaf } from './certs.js';

/** A certificate and its key, as files (for etcd and etcdctl) and as PEM (for Node clients). */
export interface CertKeyPair {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/** The TLS material of an etcd started with `tls: true`. */
export interface EtcdTls {
  /** The CA that issued the server certificate and the trusted client certificate. */
  readonly caFile: string;
  readonly caPem: string;
  /** For 127.0.0.1 and localhost. */
  readonly server: CertKeyPair;
  /** Issued by the CA above: etcd accepts it. */
  readonly client: CertKeyPair;
  /** Issued by another CA: etcd refuses the handshake. */
  readonly untrustedClient: CertKeyPair;
}

/**
 * The client certificates' common name. With `--client-cert-auth` and auth enabled, etcd takes a
 * certificate's CN as the user name when a v3 request carries no token (and v2 does so when a
 * request has no basic auth), so it must not name a user the tests create.
 */
export const CLIENT_CERT_NAME = 'edgelb-etcd-test-client';

/** A fresh CA, server and client certificates, written under `dir`. */
export async function makeEtcdTls(dir: string): Promise<EtcdTls> {
  const [ca, otherCa] = await Promise.all([makeCa('edgelb etcd test CA'), makeCa('edgelb untrusted CA')]);
  const [server, client, untrusted] = await Promise.all([
    makeLeaf({ names: ['localhost'], ipAddresses: ['127.0.0.1'], issuer: ca }),
    makeLeaf({ names: [CLIENT_CERT_NAME], issuer: ca }),
    makeLeaf({ names: [CLIENT_CERT_NAME], issuer: otherCa }),
  ]);
  const caFile = path.join(dir, 'ca.crt');
  await writeFile(caFile, ca.certPem);
  return {
    caFile,
    caPem: ca.certPem,
    server: await writePair(dir, 'server', server),
    client: await writePair(dir, 'client', client),
    untrustedClient: await writePair(dir, 'untrusted-client', untrusted),
  };
}

async function writePair(dir: string, name: string, leaf: { certPem: string; keyPem: string }): Promise<CertKeyPair> {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  await writeFile(certFile, leaf.certPem);
  await writeFile(keyFile, leaf.keyPem, { mode: 0o600 });
  return { certFile, keyFile, certPem: leaf.certPem, keyPem: leaf.keyPem };
}

/** What a client presenting `pair` (or no certificate) uses to reach an etcd with `tls`. */
export function clientTls(tls: EtcdTls, pair: CertKeyPair | 'none' = tls.client): ClientTls {
  return pair === 'none' ? { ca: tls.caPem } : { ca: tls.caPem, cert: pair.certPem, key: pair.keyPem };
}
