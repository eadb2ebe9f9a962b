import { isIPv4, isIPv6 } from 'node:net';
import { KEY_PATHS } from './keyspace.js';
import type { Entries, Rejection } from './types.js';
import { EntryError } from './values.js';

// Issue 15: the replicas that share rate and connection counters through HAProxy's peers
// protocol. Each replica registers `peers/<name>` = `host:port` in etcd (sources/peer-registration.ts);
// every replica renders the whole set into its `peers` section (templates/haproxy.cfg.hbs).

/** One member of the peers section: a replica's name and the address its HAProxy peer listens on. */
export interface Peer {
  readonly name: string;
  /** `10.81.0.5:7946` or `[fd00::5]:7946`, as HAProxy's `peer` line takes it. */
  readonly address: string;
}

/** This replica's own peer (settings) and the others registered in etcd, sorted by name. */
export interface PeerSet {
  readonly local: Peer;
  readonly remotes: readonly Peer[];
}

/**
 * A peer name: HAProxy compares it with `localpeer` and sends it on every connection, so it must
 * be one word; the letters of a host name, which is the default (settings/peers.ts).
 */
const PEER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function parsePeerName(raw: string): string {
  if (!PEER_NAME.test(raw))
    throw new EntryError(`a peer name is 1–63 letters, digits, '_', '.', '-' (starting with a letter or digit), got ${JSON.stringify(raw)}`);
  return raw;
}

/**
 * A peer address: an IP literal and a port. No host names: HAProxy resolves a peer's name only
 * when it starts, so a name that moves would silently stop the sharing until the next reload.
 * Returned in canonical form.
 */
export function parsePeerAddress(raw: string): string {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(raw);
  const port = Number(match?.[3]);
  const v6 = match?.[1];
  const v4 = match?.[2];
  const hostOk = v6 !== undefined ? isIPv6(v6) : v4 !== undefined && isIPv4(v4);
  if (!match || !hostOk || port < 1 || port > 65535) {
    throw new EntryError(`a peer address is <IPv4>:<port> or [<IPv6>]:<port>, got ${JSON.stringify(raw.slice(0, 80))}`);
  }
  // One spelling per address (the WHATWG URL parser's: `[fd00:0::5]` → `[fd00::5]`), so that
  // two registrations of one address, or this replica's own, compare equal as text.
  return v6 !== undefined ? `[${new URL(`http://[${v6}]/`).hostname.slice(1, -1)}]:${port}` : `${v4}:${port}`;
}

/**
 * The peer set from the registrations under `peers/` (keys relative to the load balancer's path). Pure. A registration
 * that could not be rendered safely is left out with its key and reason: a bad name or address,
 * this replica's name with another address (two replicas configured with one name), or another
 * name at this replica's own address (HAProxy would connect to itself).
 */
export function peerSetOf(registrations: Entries, local: Peer): { readonly peers: PeerSet; readonly rejected: readonly Rejection[] } {
  const remotes: Peer[] = [];
  const rejected: Rejection[] = [];
  for (const [key, raw] of registrations) {
    if (!key.startsWith(KEY_PATHS.peers)) continue;
    try {
      const name = parsePeerName(key.slice(KEY_PATHS.peers.length));
      const address = parsePeerAddress(raw.trim());
      if (name === local.name) {
        if (address !== local.address)
          throw new EntryError(
            `this replica's peer name, registered with ${address} (this replica: ${local.address}); give each replica its own KONTENA_LB_PEER_NAME`,
          );
        continue;
      }
      if (address === local.address) throw new EntryError(`this replica's own peer address ${address}, under another name`);
      remotes.push({ name, address });
    } catch (error) {
      if (!(error instanceof EntryError)) throw error;
      rejected.push({ key, code: 'invalid_peer', reason: error.message });
    }
  }
  remotes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { peers: { local, remotes }, rejected };
}

/** The peers a reload adds and removes (each set with the local one), for its reason; undefined when they are the same. */
export function peersChange(before: readonly Peer[] | undefined, after: readonly Peer[] | undefined): string | undefined {
  const text = (peers: readonly Peer[] | undefined) => new Set((peers ?? []).map((p) => `${p.name} ${p.address}`));
  const was = text(before);
  const now = text(after);
  const added = [...now].filter((p) => !was.has(p));
  const removed = [...was].filter((p) => !now.has(p));
  if (added.length === 0 && removed.length === 0) return undefined;
  return `peers changed: ${[...added.map((p) => `+${p}`), ...removed.map((p) => `-${p}`)].join(', ')}`;
}
