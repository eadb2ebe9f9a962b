/**
 * The resync flags of HAProxy 2.6's `show peers` answer (runtime API), for the tests and the
 * benchmarks of the counters shared through peers (issue 15). The peers themselves and their
 * sessions: src/admin/haproxy-peers.ts parseShowPeers.
 */

/** The section's flags: the worker learned from the previous one (or gave up), and from the remote peers. */
export const RESYNC_LOCAL = 0x1;
export const RESYNC_FINISHED = 0x3;

/**
 * Whether the worker's peers flags (of the `edgelb` section) have every bit of `mask`. HAProxy
 * hands its tables to the next worker on a reload only once its own first resync has finished
 * (RESYNC_FINISHED: from the old worker and the remote peers, or given up after its timeout).
 */
export function peersFlagsHave(showPeers: string, mask = RESYNC_FINISHED): boolean {
  const flags = /id=edgelb .*flags=0x([0-9a-f]+)/.exec(showPeers)?.[1];
  return flags !== undefined && (Number.parseInt(flags, 16) & mask) === mask;
}
