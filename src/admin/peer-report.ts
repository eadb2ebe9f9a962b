import type { PeersSettings } from '../render/peers-view.js';
import type { PeerSession } from './haproxy-peers.js';

// KONTENA_LB_PEERS=etcd: whether this replica's HAProxy shares its rate_limit/conn_limit counters
// with every other replica in the config it serves. A peer that stays unconnected (a wrong
// KONTENA_LB_PEERS_ADDRESS, a firewall between the replicas) lets a client have each limit once
// per replica, while traffic flows: a warning, never a failed health check.

/**
 * How long a peer may stay unconnected before it is a warning: HAProxy drops and re-establishes
 * every session on a reload (the new worker connects afresh), and retries a lost one within
 * seconds, so a shorter gap is routine.
 */
export const PEER_GRACE_MS = 30_000;

/** `established`: HAProxy has a session with the peer; `unknown`: HAProxy could not be asked, or lists no such peer yet. */
export type PeerState = 'established' | 'not_established' | 'unknown';

export interface PeerReport {
  readonly name: string;
  readonly address: string;
  readonly state: PeerState;
  /** HAProxy's `last_status` (ESTA, CONN, HSHK, RETR, NAME, UNKN, …); null when unknown. */
  readonly lastStatus: string | null;
  /** Seconds since HAProxy's last handshake with the peer; null: never, or unknown. */
  readonly lastHandshakeSeconds: number | null;
  /** Seconds until HAProxy's next connection attempt; null: none scheduled, or unknown. */
  readonly reconnectSeconds: number | null;
  readonly newConnections: number | null;
  readonly protocolErrors: number | null;
  /** Stick tables shared with the peer. */
  readonly tables: number | null;
  /** Seconds this replica has seen the peer unconnected without a break, as of `checkedAt`; null while established or unknown. */
  readonly notEstablishedSeconds: number | null;
  /** Unconnected for longer than the grace period: its counters are not shared. */
  readonly warning: boolean;
}

export interface PeersReport {
  /** This replica: its name among the peers (`localpeer`) and the address it listens on for them. */
  readonly local: { readonly name: string; readonly address: string };
  /** The other replicas in the config HAProxy serves, sorted by name. */
  readonly remotes: readonly PeerReport[];
  /** When HAProxy was last asked (`show peers`); null: not yet. */
  readonly checkedAt: string | null;
  /** Why HAProxy could not be asked the last time; null when it answered. */
  readonly error: string | null;
  /** One line per peer unconnected for longer than the grace period. */
  readonly warnings: readonly string[];
}

/** Since when each remote peer has been seen unconnected (ms since the epoch), and whether that was reported. */
export interface PeerTrack {
  readonly downSince: number;
  readonly reported: boolean;
}

export type PeerTransition = { readonly kind: 'down'; readonly name: string; readonly downSince: number } | { readonly kind: 'up'; readonly name: string };

/**
 * The next tracks from one look at HAProxy's sessions. Pure. A configured peer seen unconnected
 * starts (or keeps) its clock; past the grace period it is reported `down` once; seen established
 * after that it is reported `up` once. A peer HAProxy did not list keeps its track unchanged
 * (unknown is not a transition); a peer no longer configured is forgotten, without a report.
 */
export function trackPeers(
  tracks: ReadonlyMap<string, PeerTrack>,
  configured: readonly string[],
  sessions: readonly PeerSession[],
  now: number,
  graceMs: number,
): { readonly tracks: ReadonlyMap<string, PeerTrack>; readonly transitions: readonly PeerTransition[] } {
  const byName = new Map(sessions.filter((s) => !s.local).map((s) => [s.name, s]));
  const next = new Map<string, PeerTrack>();
  const transitions: PeerTransition[] = [];
  for (const name of configured) {
    const track = tracks.get(name);
    const session = byName.get(name);
    if (!session) {
      if (track) next.set(name, track);
    } else if (session.established) {
      if (track?.reported) transitions.push({ kind: 'up', name });
    } else {
      const downSince = track?.downSince ?? now;
      const due = now - downSince >= graceMs;
      if (due && !track?.reported) transitions.push({ kind: 'down', name, downSince });
      next.set(name, { downSince, reported: due || (track?.reported ?? false) });
    }
  }
  return { tracks: next, transitions };
}

/** What /status, the dashboard and the metrics show: the applied peers joined with HAProxy's last answer by name. Pure. */
export function peersReportOf(
  applied: PeersSettings,
  last: { readonly sessions: readonly PeerSession[]; readonly at: number; readonly error: string | null } | undefined,
  tracks: ReadonlyMap<string, PeerTrack>,
  graceMs: number,
): PeersReport {
  const sessions = new Map((last?.error ? [] : (last?.sessions ?? [])).filter((s) => !s.local).map((s) => [s.name, s]));
  const local = applied.members.find((m) => m.name === applied.local);
  const remotes = applied.members
    .filter((m) => m.name !== applied.local)
    .map((peer): PeerReport => {
      const session = sessions.get(peer.name);
      const track = tracks.get(peer.name);
      const state: PeerState = !session ? 'unknown' : session.established ? 'established' : 'not_established';
      // As of HAProxy's last answer: between two looks nothing is known, so nothing is extrapolated.
      const downMs = state === 'not_established' && track && last ? last.at - track.downSince : null;
      return {
        name: peer.name,
        address: peer.address,
        state,
        lastStatus: session?.lastStatus ?? null,
        lastHandshakeSeconds: session?.lastHandshakeSeconds ?? null,
        reconnectSeconds: session?.reconnectSeconds ?? null,
        newConnections: session?.newConnections ?? null,
        protocolErrors: session?.protocolErrors ?? null,
        tables: session?.tables ?? null,
        notEstablishedSeconds: downMs === null ? null : Math.floor(downMs / 1000),
        warning: downMs !== null && downMs >= graceMs,
      };
    });
  return {
    local: { name: applied.local, address: local?.address ?? '' },
    remotes,
    checkedAt: last ? new Date(last.at).toISOString() : null,
    error: last?.error ?? null,
    warnings: remotes
      .filter((p) => p.warning)
      .map(
        (p) =>
          `peer ${p.name} (${p.address}) not connected for ${p.notEstablishedSeconds} s (HAProxy: last_status=${p.lastStatus}): the rate_limit and conn_limit counters are not shared with it`,
      ),
  };
}
