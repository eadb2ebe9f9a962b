import type { Logger } from '../log.js';
import type { PeersSettings } from '../render/peers-view.js';
import type { PeerSession } from './haproxy-peers.js';
import { PEER_GRACE_MS, peersReportOf, trackPeers, type PeerTrack, type PeersReport } from './peer-report.js';

export interface PeerMonitorOptions {
  /** HAProxy's `show peers`, parsed (haproxy-peers.ts); rejects when HAProxy cannot be asked. */
  readonly readSessions: () => Promise<PeerSession[]>;
  /** The peers of the config HAProxy serves (controller status); undefined before the first apply. */
  readonly applied: () => PeersSettings | undefined;
  /** Whether HAProxy runs: it is not asked otherwise. */
  readonly running: () => boolean;
  readonly logger: Logger;
  readonly graceMs?: number;
  readonly intervalMs?: number;
  readonly now?: () => number;
}

/** The stable names of the monitor's log lines (alerts key on them; see the README's Troubleshooting). */
export type PeerEvent = 'peers.session_down' | 'peers.session_up';

/**
 * KONTENA_LB_PEERS=etcd: asks HAProxy every few seconds which peer sessions are up, so that a peer
 * unconnected past the grace period is logged once (`peers.session_down`, a warning) and once
 * again when it is back (`peers.session_up`), whether or not anyone reads /status. /status, the
 * dashboard and /metrics read the last answer (`report()`), never HAProxy themselves.
 */
export class PeerMonitor {
  private tracks: ReadonlyMap<string, PeerTrack> = new Map();
  private last: { sessions: readonly PeerSession[]; at: number; error: string | null } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly graceMs: number;
  private readonly now: () => number;

  constructor(private readonly options: PeerMonitorOptions) {
    this.graceMs = options.graceMs ?? PEER_GRACE_MS;
    this.now = options.now ?? Date.now;
  }

  start(): void {
    const tick = () => {
      this.running = this.check().finally(() => {
        this.running = undefined;
        if (this.timer) this.timer = setTimeout(tick, this.options.intervalMs ?? 5000);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** The applied peers and their sessions as last seen; undefined before a config with peers is applied. */
  report(): PeersReport | undefined {
    const applied = this.options.applied();
    return applied && peersReportOf(applied, this.last, this.tracks, this.graceMs);
  }

  /** One look at HAProxy's sessions: logs the transitions. Never rejects. */
  async check(): Promise<void> {
    const applied = this.options.applied();
    if (!applied || !this.options.running()) return;
    let sessions: PeerSession[];
    try {
      sessions = await this.options.readSessions();
    } catch (error) {
      // Unknown is not down: the tracks stay as they were until HAProxy answers again.
      this.last = { sessions: [], at: this.now(), error: (error as Error).message };
      return;
    }
    const now = this.now();
    this.last = { sessions, at: now, error: null };
    const configured = applied.members.filter((m) => m.name !== applied.local);
    const next = trackPeers(
      this.tracks,
      configured.map((m) => m.name),
      sessions,
      now,
      this.graceMs,
    );
    this.tracks = next.tracks;
    const { logger } = this.options;
    for (const transition of next.transitions) {
      const peer = configured.find((m) => m.name === transition.name);
      const session = sessions.find((s) => s.name === transition.name);
      const fields = { peer: transition.name, address: peer?.address, lastStatus: session?.lastStatus };
      if (transition.kind === 'down') {
        const seconds = Math.floor((now - transition.downSince) / 1000);
        logger.warn(
          { event: 'peers.session_down' satisfies PeerEvent, ...fields, notEstablishedSeconds: seconds },
          'peer not connected: the rate_limit and conn_limit counters are not shared with it (check KONTENA_LB_PEERS_ADDRESS and the network between the replicas)',
        );
      } else {
        logger.info({ event: 'peers.session_up' satisfies PeerEvent, ...fields }, 'peer connected again: counters are shared with it');
      }
    }
  }
}
