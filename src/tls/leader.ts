import type { Etcd3, Lease, Watcher } from 'etcd3';
import type { Logger } from '../log.js';

export interface LeaderElectionOptions {
  readonly client: Etcd3;
  /** The full etcd key the leader holds, e.g. `<lbPath>/acme/leader`. */
  readonly key: string;
  /** Unique per replica and per run; the key's value while this replica leads. */
  readonly id: string;
  /** Lease TTL: a leader that dies is replaced within about this long. */
  readonly ttlSeconds: number;
  readonly logger: Logger;
  readonly onChange: (leading: boolean) => void;
}

/**
 * Leader election on an etcd lease: the leader is whoever created `key` (create-if-absent in a
 * transaction), attached to its lease and kept alive every TTL/3. When the leader stops it
 * deletes the key (others take over at once); when it dies or loses etcd, the lease expires
 * within the TTL and the key with it. Followers watch the key and also retry every TTL, so a
 * missed watch event costs at most one TTL.
 *
 * Leadership is only as good as the last keepalive: `isLeader()` turns false once the lease has
 * not been renewed for 2/3 of the TTL, before etcd could have given the key to someone else.
 * Writes that must only come from the leader are fenced with `fence()` (a transaction that
 * checks the key still holds this replica's id), so a replica that lost leadership without
 * knowing it yet cannot overwrite the new leader's work.
 */
export class LeaderElection {
  private leading = false;
  private lease: Lease | undefined;
  private lastRenewal = 0;
  private watcher: Watcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private campaigning: Promise<void> | undefined;
  private stopped = false;
  private readonly ttlMs: number;

  constructor(private readonly options: LeaderElectionOptions) {
    if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds < 1) throw new RangeError('leader TTL must be a whole number of seconds, at least 1');
    this.ttlMs = options.ttlSeconds * 1000;
  }

  start(): void {
    this.stopped = false;
    this.kick(0);
  }

  /** True while this replica holds the key and its lease was renewed recently enough. */
  isLeader(): boolean {
    return this.leading && Date.now() - this.lastRenewal < (this.ttlMs * 2) / 3;
  }

  /** A transaction that only succeeds while the key still holds this replica's id. */
  fence() {
    return this.options.client.if(this.options.key, 'Value', '==', this.options.id);
  }

  /** Gives up leadership (deleting the key, so another replica takes over at once) and stops campaigning. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.campaigning?.catch(() => undefined);
    const watcher = this.watcher;
    this.watcher = undefined;
    await watcher?.cancel().catch(() => undefined);
    const wasLeading = this.leading;
    this.setLeading(false, 'resigned');
    const lease = this.lease;
    this.lease = undefined;
    if (wasLeading) {
      await this.fence().then(this.options.client.delete().key(this.options.key)).commit().catch(() => undefined);
    }
    // Revoking also deletes the key if the transaction above could not.
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
    const { client, key, id, logger } = this.options;
    try {
      // A leader whose lease has not been renewed in time steps down before etcd expires it.
      if (this.leading && !this.isLeader()) this.setLeading(false, 'lease not renewed in time');
      const lease = this.lease ?? this.newLease();
      const leaseId = await lease.grant();
      if (this.stopped) return;
      await this.ensureWatch();
      const result = await client
        .if(key, 'Create', '==', 0)
        .then(client.put(key).value(id).lease(leaseId))
        .else(client.get(key))
        .commit();
      if (this.stopped) return;
      const holder = result.succeeded ? id : result.responses[0]?.response_range?.kvs?.[0]?.value?.toString('utf8');
      if (holder === id) {
        this.setLeading(true, result.succeeded ? 'elected' : 'still the leader');
      } else {
        this.setLeading(false, `${holder ?? 'another replica'} leads`);
      }
      this.kick(this.ttlMs / 3);
    } catch (error) {
      if (this.stopped) return;
      logger.warn({ err: (error as Error).message }, 'ACME leader election: cannot reach etcd; retrying');
      this.kick(Math.min(1000, this.ttlMs / 3));
    }
  }

  private newLease(): Lease {
    const lease = this.options.client.lease(this.options.ttlSeconds);
    this.lease = lease;
    this.lastRenewal = Date.now();
    lease.on('keepaliveSucceeded', () => {
      if (lease === this.lease) this.lastRenewal = Date.now();
    });
    lease.on('lost', (error: Error) => {
      if (lease !== this.lease) return;
      this.lease = undefined;
      this.setLeading(false, `lease lost: ${error.message}`);
      this.kick(100);
    });
    return lease;
  }

  private async ensureWatch(): Promise<void> {
    if (this.watcher) return;
    const watcher = await this.options.client.watch().key(this.options.key).create();
    if (this.stopped) {
      await watcher.cancel();
      return;
    }
    this.watcher = watcher;
    watcher.on('delete', () => {
      if (this.leading) this.setLeading(false, 'leader key deleted');
      this.kick(0);
    });
    watcher.on('put', (kv) => {
      if (this.leading && kv.value.toString('utf8') !== this.options.id) this.setLeading(false, 'leader key taken over');
    });
    const drop = () => {
      if (this.watcher !== watcher) return;
      this.watcher = undefined;
      watcher.removeAllListeners();
      watcher.on('error', () => undefined);
      void watcher.cancel().catch(() => undefined);
      this.kick(100);
    };
    watcher.on('error', drop);
    watcher.on('disconnected', drop);
  }

  private setLeading(leading: boolean, why: string): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.options.logger.info({ leader: leading, id: this.options.id, why }, leading ? 'ACME leader: this replica orders certificates' : 'ACME leader: no longer leading');
    this.options.onChange(leading);
  }
}
