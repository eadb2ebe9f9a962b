import type { KvFence, KvLease, KvStore } from '../etcd/store.js';
import type { Logger } from '../log.js';
import type { Snapshot } from '../model/snapshot.js';
import { Backoff } from '../util/backoff.js';
import type { Election } from './election.js';
import { LEADER_KEY } from './keys.js';

export interface LeaderElectionOptions {
  readonly store: KvStore;
  /** The full etcd key the leader holds: `<lbPath>/` + LEADER_KEY (follow() reads LEADER_KEY from snapshots). */
  readonly key: string;
  /** Unique per replica and per run; the key's value while this replica leads. */
  readonly id: string;
  /** Lease TTL: a leader that dies is replaced within about this long. */
  readonly ttlSeconds: number;
  readonly logger: Logger;
  readonly onChange: (leading: boolean) => void;
}

/**
 * Leader election on a TTL key, for the v2 API, which has no election of its own (see V2Lease): the leader is whoever
 * created `key` (create-if-absent), kept alive every TTL/3. When the leader stops it deletes the
 * key (others take over at once); when it dies or loses etcd, the key expires within the TTL.
 * Followers see the key in every snapshot of the prefix (observe()) and also retry every TTL/3,
 * so a missed change costs at most that.
 *
 * Leadership is only as good as the last renewal: `isLeader()` turns false once the lease has
 * not been renewed for 2/3 of the TTL, before etcd could have given the key to someone else.
 * Writes that must only come from the leader are fenced on `fence()` (the key still holds this
 * replica's id), so a replica that lost leadership without knowing it yet cannot overwrite the
 * new leader's work.
 */
export class LeaderElection implements Election {
  private leading = false;
  private lease: KvLease | undefined;
  private lastRenewal = 0;
  /** The revision at which this replica last found itself holding the key. */
  private claimedAt = 0n;
  private timer: NodeJS.Timeout | undefined;
  private campaigning: Promise<void> | undefined;
  /** Until start(): observe() must not campaign for a manager that was never started. */
  private stopped = true;
  private readonly ttlMs: number;
  /** Trying etcd again after a failed claim: from a second (or TTL/3 when shorter), up to TTL/3. */
  private readonly retry: Backoff;

  constructor(private readonly options: LeaderElectionOptions) {
    if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds < 1) throw new RangeError('leader TTL must be a whole number of seconds, at least 1');
    this.ttlMs = options.ttlSeconds * 1000;
    const firstMs = Math.min(1000, this.ttlMs / 3);
    this.retry = new Backoff({ firstMs, maxMs: Math.max(firstMs, this.ttlMs / 3) });
  }

  start(): void {
    this.stopped = false;
    this.kick(0);
  }

  /** True while this replica holds the key and its lease was renewed recently enough. */
  isLeader(): boolean {
    return this.leading && Date.now() - this.lastRenewal < (this.ttlMs * 2) / 3;
  }

  /** The condition a leader's writes are fenced on. */
  fence(): KvFence {
    return { key: this.options.key, value: this.options.id };
  }

  /**
   * The leader key's value in the newest snapshot (at `revision`): a deleted key is a chance to
   * lead, a foreign one ends leading. A snapshot older than this replica's last claim says
   * nothing about it (it may predate the claim) and is ignored.
   */
  observe(holder: string | undefined, revision: string): void {
    if (this.stopped || BigInt(revision) < this.claimedAt) return;
    if (holder === undefined) {
      if (this.leading) this.setLeading(false, 'leader key deleted');
      this.kick(0);
    } else if (this.leading && holder !== this.options.id) {
      this.setLeading(false, 'leader key taken over');
    }
  }

  /** The leader key in the newest snapshot (see observe()). */
  follow(snapshot: Pick<Snapshot, 'get' | 'revision'>): void {
    this.observe(snapshot.get(LEADER_KEY), snapshot.revision);
  }

  /** Gives up leadership (deleting the key, so another replica takes over at once) and stops campaigning. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.campaigning?.catch(() => undefined);
    const wasLeading = this.leading;
    this.setLeading(false, 'resigned');
    const lease = this.lease;
    this.lease = undefined;
    if (wasLeading) {
      await this.options.store.fencedWrite(this.fence(), [{ type: 'delete', key: this.options.key }]).catch(() => undefined);
    }
    // Revoking also deletes the key if the write above could not.
    await lease?.revoke().catch(() => undefined);
  }

  private kick(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.campaigning) return;
      this.campaigning = this.campaign().finally(() => {
        this.campaigning = undefined;
      });
    }, delayMs);
  }

  private async campaign(): Promise<void> {
    const { key, id, logger } = this.options;
    try {
      // A leader whose lease has not been renewed in time steps down before etcd expires it.
      if (this.leading && !this.isLeader()) this.setLeading(false, 'lease not renewed in time');
      const lease = this.lease ?? this.newLease();
      const { created, holder, revision } = await lease.claim(key, id);
      if (this.stopped) return;
      if (holder === id) {
        this.claimedAt = BigInt(revision);
        if (created) this.lastRenewal = Date.now();
        this.setLeading(true, created ? 'elected' : 'still the leader');
      } else {
        this.setLeading(false, `${holder ?? 'another replica'} leads`);
      }
      this.retry.reset();
      this.kick(this.ttlMs / 3);
    } catch (error) {
      if (this.stopped) return;
      const retryInMs = this.retry.next();
      logger.warn({ err: (error as Error).message, retryInMs }, 'ACME leader election: cannot reach etcd; retrying');
      this.kick(retryInMs);
    }
  }

  private newLease(): KvLease {
    const lease = this.options.store.lease(this.options.ttlSeconds);
    this.lease = lease;
    this.lastRenewal = Date.now();
    lease.onRenewed(() => {
      if (lease === this.lease) this.lastRenewal = Date.now();
    });
    lease.onLost((failure) => {
      if (lease !== this.lease) return;
      this.lease = undefined;
      this.setLeading(false, `lease lost: ${failure.message}`);
      this.kick(100);
    });
    return lease;
  }

  private setLeading(leading: boolean, why: string): void {
    if (leading === this.leading) return;
    this.leading = leading;
    // Only a leader needs to tell old snapshots from new ones; a follower reacts to any (and
    // after a restored cluster, whose revisions went back, a stale claim revision would hide them all).
    if (!leading) this.claimedAt = 0n;
    this.options.logger.info(
      { leader: leading, id: this.options.id, why },
      leading ? 'ACME leader: this replica orders certificates' : 'ACME leader: no longer leading',
    );
    this.options.onChange(leading);
  }
}
