import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parsePeerAddress, parsePeerName, type Peer } from '../model/peers.js';
import { EntryError } from '../model/values.js';
import { type PeerCert, PeerCertError, parsePeerCert } from '../tls/peer-cert.js';
import { ConfigError } from './config-error.js';
import { group, setting } from './setting.js';
import { checked, parsedBy, text } from './values.js';

// Issue 15: rate and connection counters shared between replicas through HAProxy's peers protocol.

const PEERS_MODES = ['off', 'etcd'] as const;

/** A model parser (it throws EntryError) as a setting's schema, its message naming the variable. */
const peerValue = (parse: (raw: string) => string) => (env: string) =>
  parsedBy((raw) => {
    try {
      return parse(raw);
    } catch (error) {
      if (error instanceof EntryError) throw new ConfigError(`${env}: ${error.message}`);
      throw error;
    }
  });

export const peerSettings = group(
  {
    peersMode: setting({
      env: 'KONTENA_LB_PEERS',
      flag: 'peers',
      default: 'off',
      schema: (env) =>
        checked(
          (raw) => (PEERS_MODES as readonly string[]).includes(raw),
          (raw) => `${env} must be off or etcd, got ${JSON.stringify(raw)}`,
        ).transform((raw) => raw as (typeof PEERS_MODES)[number]),
      help: 'share rate_limit/conn_limit counters with the other replicas: off or etcd',
      doc: "`etcd`: each replica registers its peer address under `<path>/peers/<name>` and every replica's HAProxy shares the `rate_limit` and `conn_limit` counters with all the others (HAProxy peers), so a client cannot multiply a limit by the number of replicas. `off`: each replica counts alone (counters still survive its own reloads). See [Shared counters between replicas](#shared-counters-between-replicas)",
    }),
    peersAddress: setting({
      env: 'KONTENA_LB_PEERS_ADDRESS',
      flag: 'peers-address',
      schema: peerValue(parsePeerAddress),
      help: 'with KONTENA_LB_PEERS=etcd: IP:port this replica listens on for its peers and registers (required)',
      doc: "with `KONTENA_LB_PEERS=etcd`, required: `<IP>:<port>` (or `[<IPv6>]:<port>`) where this replica's HAProxy listens for the other replicas' peer connections, and which it registers for them: the container's overlay network address (on Kontena, its `*.kontena.local` IP), e.g. `10.81.0.5:7946`; it must be an address of this host (checked at start: HAProxy binds it). Without `KONTENA_LB_PEERS_CERT` peer traffic is plain TCP and unauthenticated: keep the port on the private network. No host names (HAProxy resolves them only at start)",
    }),
    peerName: setting({
      env: 'KONTENA_LB_PEER_NAME',
      flag: 'peer-name',
      schema: peerValue(parsePeerName),
      help: "this replica's name among the peers (default: the host name)",
      docDefault: 'the host name (a container id in a container)',
      doc: "this replica's name among the peers, unique per replica: 1–63 letters, digits, `_`, `.`, `-`",
    }),
    /** Secret: environment only (a flag would show in `ps`), never logged. */
    peersCert: setting({
      env: 'KONTENA_LB_PEERS_CERT',
      schema: text,
      help: 'with KONTENA_LB_PEERS=etcd: PEM bundle (certificate, CA chain, private key) every replica holds; peer traffic is then TLS, both sides verified',
      doc: "with `KONTENA_LB_PEERS=etcd`: a PEM bundle, the same on every replica: a certificate (self-signed, or issued by a private CA and followed by its chain up to the root), then its private key. Peer connections are then TLS both ways and each side must present a certificate the bundle's CA (the self-signed certificate itself, or the root) verifies; anyone else gets no session. Unset: peer traffic is plain TCP and unauthenticated (a warning at start, `authenticated: false` in `/status`). A bundle that cannot be used (no key, a key that does not match, expired, a public CA) stops edgelb. Environment only, never logged. See [Shared counters between replicas](#shared-counters-between-replicas)",
    }),
    peersCertFile: setting({
      env: 'KONTENA_LB_PEERS_CERT_FILE',
      flag: 'peers-cert-file',
      schema: text,
      help: 'a file holding the KONTENA_LB_PEERS_CERT bundle (a mounted secret)',
      doc: 'a file holding the `KONTENA_LB_PEERS_CERT` bundle (a mounted secret); set one of the two',
    }),
  },
  ({ peersMode, peersAddress, peerName, peersCert, peersCertFile }): { readonly peers: Peer | undefined; readonly peersCert: PeerCert | undefined } => {
    const cert = peerCertOf(peersCert, peersCertFile);
    if (peersMode === 'off') {
      // A security setting that does nothing would mislead: say so rather than ignore it.
      if (cert) throw new ConfigError('KONTENA_LB_PEERS_CERT is set but KONTENA_LB_PEERS is off: set KONTENA_LB_PEERS=etcd, or unset it');
      return { peers: undefined, peersCert: undefined };
    }
    if (peersAddress === undefined)
      throw new ConfigError('KONTENA_LB_PEERS=etcd needs KONTENA_LB_PEERS_ADDRESS: the <IP>:<port> the other replicas reach this one on');
    return { peers: { name: peerName ?? hostPeerName(), address: peersAddress }, peersCert: cert };
  },
);

/** The peers' bundle from the variable or the file, checked; a problem is one line naming where it came from, never its content. */
function peerCertOf(inline: string | undefined, file: string | undefined): PeerCert | undefined {
  if (inline !== undefined && file !== undefined) throw new ConfigError('set KONTENA_LB_PEERS_CERT or KONTENA_LB_PEERS_CERT_FILE, not both');
  if (inline === undefined && file === undefined) return undefined;
  const source = file === undefined ? 'KONTENA_LB_PEERS_CERT' : `KONTENA_LB_PEERS_CERT_FILE (${file})`;
  let pem: string;
  try {
    pem = inline ?? readFileSync(file!, 'utf8');
  } catch (error) {
    throw new ConfigError(`${source}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    return parsePeerCert(pem);
  } catch (error) {
    if (error instanceof PeerCertError) throw new ConfigError(`${source}: ${error.message}`);
    throw error;
  }
}

/** The host name as a peer name (a container's id); one that is not a valid name asks for the setting. */
function hostPeerName(): string {
  const host = os.hostname();
  try {
    return parsePeerName(host);
  } catch {
    throw new ConfigError(`the host name ${JSON.stringify(host)} is not a valid peer name: set KONTENA_LB_PEER_NAME`);
  }
}
