import type { Logger } from '../log.js';
import type { PeersTlsFiles } from '../render/peers-view.js';
import type { PeerCert } from '../tls/peer-cert.js';
import { writeFileAtomic } from '../util/atomic-write.js';

/** The stable names of the log lines about the peers' TLS (alerts key on them; see the README). */
export type PeerTlsEvent = 'peers.unauthenticated' | 'peers.cert_expiring';

/**
 * KONTENA_LB_PEERS=etcd at start: the peers' TLS files written, or the one warning that peer
 * traffic is open to anything that reaches the port. A bundle expiring within `warnDays` is a
 * warning too: once it expires the replicas refuse each other and each counts alone.
 */
export async function preparePeerTls(cert: PeerCert | undefined, files: PeersTlsFiles | undefined, warnDays: number, logger: Logger): Promise<void> {
  if (!cert || !files) {
    logger.warn(
      { event: 'peers.unauthenticated' satisfies PeerTlsEvent },
      'peer traffic is plain TCP and unauthenticated: anything that reaches KONTENA_LB_PEERS_ADDRESS can change the shared rate and connection counters; set KONTENA_LB_PEERS_CERT',
    );
    return;
  }
  await writePeerCertFiles(cert, files);
  const fields = { subject: cert.subject, notAfter: cert.notAfter.toISOString() };
  logger.info(fields, 'peer traffic: TLS, certificates verified both ways');
  const daysLeft = Math.floor((cert.notAfter.getTime() - Date.now()) / 86_400_000);
  if (daysLeft < warnDays) {
    logger.warn({ event: 'peers.cert_expiring' satisfies PeerTlsEvent, ...fields, daysLeft }, 'KONTENA_LB_PEERS_CERT expires soon: renew it on every replica');
  }
}

/**
 * KONTENA_LB_PEERS_CERT on disk, where the peers section reads it: written once at start, before
 * the first config names them, each atomically (a reload never sees half a key). The bundle holds
 * the key: 0600. The CA file is public, but only HAProxy reads it.
 */
export async function writePeerCertFiles(cert: PeerCert, files: PeersTlsFiles): Promise<void> {
  await writeFileAtomic(files.crt, cert.pem, 0o600);
  await writeFileAtomic(files.caFile, cert.caPem, 0o600);
}
