import type { KvLease, KvStore } from '../etcd/store.js';
import type { Logger } from '../log.js';
import { KEY_PATHS } from '../model/keyspace.js';
import type { Peer } from '../model/peers.js';
import type { Snapshot } from '../model/snapshot.js';
import { Backoff } from '../util/backoff.js';

export interface PeerRegistrationOptions {
  readonly store: KvStore;
  /** The load balancer's etcd path, without a trailing slash. */
  readonly prefix: string;
  readonly peer: Peer;
  readonly logger: Logger;
  /** Lease TTL in seconds (default PEER_TTL_SECONDS). */
  readonly ttlSeconds?: number;
}

/**
 * How long a dead replica's registration outlives it: the other replicas then reload without it.
 * Until they do, their HAProxy only retries connecting to it, which costs nothing but log noise.
 */
export const PEER_TTL_SECONDS = 10;

/** How long stop() waits for etcd to revoke the registration's lease. */
const REVOKE_DEADLINE_MS = 2000;

/**
 * Issue 15: keeps `peers/<name>` = this replica's peer address in etcd, on a lease (v3) or a
 * refreshed TTL (v2), for as long as the replica runs; the other replicas read it from their
 * snapshots (controller/inputs.ts) and render it into their peers section. A lost lease (etcd
 * unreachable longer than the TTL) registers again, with the one backoff policy; stop() revokes
 * it, so the others drop this replica at once instead of after the TTL.
 */
export class PeerRegistration {
  private lease: KvLease | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retry = new Backoff({ firstMs: 500, maxMs: 10_000 });
  private stopped = false;
  /** The other address last found holding this replica's name (logged once). */
  private takenBy: string | undefined;
  /** The etcd revision of the registration: a snapshot from before it may lack the key. */
  private registeredAt: bigint | undefined;

  constructor(private readonly options: PeerRegistrationOptions) {}

  start(): void {
    void this.register();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const lease = this.lease;
    this.lease = undefined;
    // At most 2 s: an etcd that does not answer must not hold the shutdown (the others then drop
    // this replica when its lease expires, as after a crash).
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, REVOKE_DEADLINE_MS);
    });
    await Promise.race([lease?.revoke().catch(() => undefined), deadline]);
    clearTimeout(timer);
  }

  /**
   * Every snapshot: a registration deleted by someone else (`etcdctl del`) while its lease lives
   * on is written again. A v3 lease never says so (v2's next refresh would find it gone).
   */
  offer(snapshot: Snapshot): void {
    const lease = this.lease;
    if (!lease || this.registeredAt === undefined || !/^\d+$/.test(snapshot.revision) || BigInt(snapshot.revision) <= this.registeredAt) return;
    const relative = `${KEY_PATHS.peers}${this.options.peer.name}`;
    if (snapshot.under(KEY_PATHS.peers).has(relative)) return;
    this.lease = undefined;
    const key = `${this.options.prefix}/${relative}`;
    this.options.logger.warn(
      { event: 'peers.registration_deleted', key, revision: snapshot.revision },
      'peer registration deleted from etcd; registering again',
    );
    void lease.revoke().catch(() => undefined);
    void this.register();
  }

  private async register(): Promise<void> {
    if (this.stopped) return;
    const { store, prefix, peer, logger } = this.options;
    const key = `${prefix}/${KEY_PATHS.peers}${peer.name}`;
    const lease = store.lease(this.options.ttlSeconds ?? PEER_TTL_SECONDS);
    lease.onLost((failure) => {
      if (lease !== this.lease) return;
      this.lease = undefined;
      const retryInMs = this.retry.next();
      logger.warn({ event: 'peers.registration_lost', key, err: failure.message, retryInMs }, 'peer registration lost; registering again');
      this.retryTimer = setTimeout(() => void this.register(), retryInMs);
    });
    try {
      // Created only if free: a plain put would take the name from another replica configured with
      // it, whose lease then ends (v2) and takes it back, each flip a reload of every replica.
      const claim = await lease.claim(key, peer.address);
      if (!claim.created) {
        if (claim.holder !== undefined && claim.holder !== peer.address) {
          this.nameTaken(key, claim.holder, lease);
          return;
        }
        // This address under this name: this replica's earlier run, killed before it deregistered
        // (its lease about to expire with the key). Moved onto this lease.
        await lease.put(key, peer.address);
      }
      if (this.stopped) {
        await lease.revoke().catch(() => undefined);
        return;
      }
      this.lease = lease;
      this.registeredAt = BigInt(claim.revision);
      this.retry.reset();
      this.takenBy = undefined;
      logger.info({ event: 'peers.registered', key, address: peer.address }, 'registered this replica as a peer');
    } catch (error) {
      const retryInMs = this.retry.next();
      logger.warn({ event: 'peers.registration_failed', key, err: (error as Error).message, retryInMs }, 'cannot register this replica as a peer; retrying');
      lease.release();
      this.retryTimer = setTimeout(() => void this.register(), retryInMs);
    }
  }

  /**
   * Another address holds this replica's name: two replicas configured with one name, or an
   * earlier run at another address whose registration has not expired yet. Registered once the
   * name is free (at most the TTL for a dead one); the error is logged once per holder.
   */
  private nameTaken(key: string, holder: string, lease: KvLease): void {
    // It holds no key (v3: a granted lease, ended now rather than after its TTL).
    void lease.revoke().catch(() => undefined);
    const retryInMs = this.retry.next();
    const fields = { event: 'peers.name_taken', key, holder, address: this.options.peer.address, retryInMs };
    if (this.takenBy === holder) this.options.logger.debug(fields, 'this peer name is still taken');
    else
      this.options.logger.error(fields, 'another replica holds this peer name; registering once it is free (give each replica its own KONTENA_LB_PEER_NAME)');
    this.takenBy = holder;
    this.retryTimer = setTimeout(() => void this.register(), retryInMs);
  }
}
