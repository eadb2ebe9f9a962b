import type { Peer, PeerSet } from '../model/peers.js';

/** The peers' bundle on disk (haproxy/peer-cert-files.ts writes them before HAProxy starts). */
export interface PeersTlsFiles {
  /** Certificate, chain and key (0600). */
  readonly crt: string;
  /** The certificates a peer's certificate is verified against. */
  readonly caFile: string;
}

/** This replica's peer name (`localpeer`) and every replica's peer, itself included, sorted by name. */
export interface PeersSettings {
  readonly local: string;
  readonly members: readonly Peer[];
}

/**
 * The peers section of a peer set (issue 15): every replica, this one included under the name
 * `localpeer` gives it, sorted by name so that every replica renders the same section. HAProxy
 * listens on the local member's address, for the other replicas and for its own next worker,
 * which takes the tables over from it on a reload (configuration manual 2.6, 3.5 "Peers").
 */
export function peersSettingsOf(set: PeerSet): PeersSettings {
  const members = [set.local, ...set.remotes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { local: set.local.name, members };
}
