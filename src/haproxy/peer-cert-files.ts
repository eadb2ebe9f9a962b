import type { PeersTlsFiles } from '../render/view.js';
import type { PeerCert } from '../tls/peer-cert.js';
import { writeFileAtomic } from '../util/atomic-write.js';

/**
 * KONTENA_LB_PEERS_CERT on disk, where the peers section reads it: written once at start, before
 * the first config names them, each atomically (a reload never sees half a key). The bundle holds
 * the key: 0600. The CA file is public, but only HAProxy reads it.
 */
export async function writePeerCertFiles(cert: PeerCert, files: PeersTlsFiles): Promise<void> {
  await writeFileAtomic(files.crt, cert.pem, 0o600);
  await writeFileAtomic(files.caFile, cert.caPem, 0o600);
}
