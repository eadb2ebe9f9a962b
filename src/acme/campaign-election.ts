import { Election as EtcdElection, type Campaign, type Lease, type Namespace } from 'etcd3';
import type { KvFence } from '../etcd/store.js';
import { classifyV3 } from '../etcd/v3-store.js';
import type { Logger } from '../log.js';
import type { Snapshot } from '../model/snapshot.js';
import { Backoff } from '../util/backoff.js';
import type { Election } from './election.js';
import { ELECTION_NAME, ELECTION_NAMESPACE, LEADER_KEY } from './keys.js';

export interface CampaignElectionOptions {
  /** The etcd3 client (or a namespace of it) the load balancer's keys are read through. */
  readonly client: Namespace;
  /** The load balancer's etcd path, without a trailing slash. */
  readonly prefix: string;
  /** Unique per replica and per run: the value this replica campaigns with. */
  readonly id: string;
  readonly ttlSeconds: number;
  readonly logger: Logger;
  readonly onChange: (leading: boolean) => void;
}

/** Campaigning again after a failed campaign: soon, but not in a tight loop while etcd is away. */
const RETRY = { firstMs: 100, maxMs: 5000, jitter: true } as const;

/**
 * Leader election on etcd's own election (the etcd3 library's Election and Campaign, as in etcd's
 * Go concurrency package), for the v3 API: each replica puts a key on its own lease under
 * `acme/election/leader/`; the oldest key leads. A leader that resigns revokes its lease and the
 * next one leads at once; one that dies is replaced when its lease expires.
 *
 * The campaign's lease is the fencing token: every leader-only write is a transaction on the
 * campaign key still being attached to that lease (`fence()`), so a replica that lost leadership
 * without knowing it yet cannot overwrite the new leader's work. And leadership is only as good as
 * the last renewal: `isLeader()` turns false once the lease has not been renewed for 2/3 of the
 * TTL, before etcd could expire it, and the leader steps down until a renewal shows the lease
 * lived (the library itself reports the lease lost only when etcd says so, or after twice the TTL;
 * then the campaign fails and a new one starts).
 */
export class CampaignElection implements Election {
  private campaign: Campaign | undefined;
  private leading = false;
  /** While leading: the fence, the campaign key relative to the prefix, the revision that created it. */
  private token: { readonly fence: KvFence; readonly relativeKey: string; readonly revision: bigint } | undefined;
  private lastRenewal = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retry = new Backoff(RETRY);
  private stopped = true;
  private readonly ttlMs: number;

  constructor(private readonly options: CampaignElectionOptions) {
    if (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds < 1) throw new RangeError('leader TTL must be a whole number of seconds, at least 1');
    this.ttlMs = options.ttlSeconds * 1000;
  }

  start(): void {
    this.stopped = false;
    this.run();
  }

  isLeader(): boolean {
    return this.leading && Date.now() - this.lastRenewal < (this.ttlMs * 2) / 3;
  }

  fence(): KvFence | undefined {
    return this.leading ? this.token?.fence : undefined;
  }

  /** A snapshot newer than the election without this leader's key: it was deleted (by hand, or expired). */
  follow(snapshot: Pick<Snapshot, 'get' | 'revision'>): void {
    const token = this.token;
    if (!this.leading || !token || BigInt(snapshot.revision) < token.revision) return;
    if (snapshot.get(token.relativeKey) === undefined) this.abandon('the campaign key is gone');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    const campaign = this.campaign;
    this.campaign = undefined;
    this.token = undefined;
    this.setLeading(false, 'resigned');
    // Revoking the lease deletes the campaign key: the next replica leads at once.
    await campaign?.resign().catch(() => undefined);
  }

  private run(): void {
    if (this.stopped) return;
    const { client, prefix, id, ttlSeconds, logger } = this.options;
    const namespace = `${prefix}/${ELECTION_NAMESPACE}`;
    const campaign = client.namespace(namespace).election(ELECTION_NAME, ttlSeconds).campaign(id);
    this.campaign = campaign;
    const lease = leaseOf(campaign);
    this.lastRenewal = Date.now();
    lease.on('keepaliveSucceeded', () => {
      if (campaign !== this.campaign) return;
      this.lastRenewal = Date.now();
      // A renewal came late, but the lease (and so the campaign key) lived: still the leader.
      if (this.token && !this.leading) this.setLeading(true, 'still the leader');
    });
    campaign.on('elected', () => void this.elected(campaign, lease));
    campaign.on('error', (error: Error) => {
      if (campaign !== this.campaign) return;
      const failure = classifyV3(error);
      logger.warn({ code: failure.code, err: failure.message }, 'ACME leader election: the campaign failed; campaigning again');
      this.abandon(`campaign failed: ${failure.message}`);
    });
  }

  /**
   * Takes the fencing token: the campaign key (the library's layout, `<namespace>election/<name>/
   * <lease id>`), its lease, and the revision that created it (older snapshots cannot show it).
   */
  private async elected(campaign: Campaign, lease: Lease): Promise<void> {
    try {
      const leaseId = await lease.grant();
      const relativeKey = `${ELECTION_NAMESPACE}${EtcdElection.prefix}/${ELECTION_NAME}/${leaseId}`;
      const key = `${this.options.prefix}/${relativeKey}`;
      const created = (await this.options.client.get(key).exec()).kvs[0]?.create_revision;
      if (campaign !== this.campaign) return;
      if (created === undefined) {
        this.abandon('the campaign key was gone when elected');
        return;
      }
      // Replicas of an earlier edgelb lead by holding `acme/leader` on their lease. The leader holds
      // it too (on the campaign's lease), so during a rolling upgrade an old and a new replica
      // never lead at once: whichever holds it first leads, the other waits for it to expire.
      const legacy = `${this.options.prefix}/${LEADER_KEY}`;
      const { client, id } = this.options;
      const take = () => client.put(legacy).value(id).lease(leaseId);
      let held = await client.if(legacy, 'Create', '==', 0).then(take()).commit();
      // Ours from an earlier campaign (a resign that failed): moved onto this campaign's lease, so it
      // never outlives this leadership, nor expires under it.
      if (!held.succeeded) held = await client.if(legacy, 'Value', '==', id).then(take()).commit();
      if (campaign !== this.campaign) return;
      if (!held.succeeded) {
        this.abandon(`${LEADER_KEY} is held by a replica of an earlier version; waiting for it to expire`);
        return;
      }
      this.token = { fence: { key, lease: leaseId }, relativeKey, revision: BigInt(created) };
      this.retry.reset();
      this.lastRenewal = Date.now();
      clearInterval(this.watchdog);
      // Stepping down in time: no CA call and no write while unsure of the lease.
      this.watchdog = setInterval(() => {
        if (this.leading && !this.isLeader()) this.setLeading(false, 'lease not renewed in time');
      }, this.ttlMs / 3);
      this.setLeading(true, 'elected');
    } catch (error) {
      if (campaign === this.campaign) this.abandon(`cannot read the campaign key: ${classifyV3(error as Error).message}`);
    }
  }

  /** Ends this campaign (resigning, which also ends leading) and campaigns again after a backoff. */
  private abandon(why: string): void {
    const campaign = this.campaign;
    this.campaign = undefined;
    this.token = undefined;
    clearInterval(this.watchdog);
    this.setLeading(false, why);
    void campaign?.resign().catch(() => undefined);
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.run(), this.retry.next());
  }

  private setLeading(leading: boolean, why: string): void {
    if (leading === this.leading) return;
    this.leading = leading;
    this.options.logger.info(
      { leader: leading, id: this.options.id, why },
      leading ? 'ACME leader: this replica orders certificates' : 'ACME leader: no longer leading',
    );
    this.options.onChange(leading);
  }
}

/**
 * The lease under a campaign, for its renewals: the library keeps it private and reports it lost
 * only twice the TTL after the last renewal, long after etcd gave the leadership to another
 * replica. Checked at run time, as issuer.ts checks acme-client's internals.
 */
function leaseOf(campaign: Campaign): Lease {
  const lease = (campaign as unknown as { lease?: Lease }).lease;
  if (!lease || typeof lease.on !== 'function' || typeof lease.grant !== 'function') {
    throw new Error('etcd3 internals changed (no Campaign.lease); edgelb needs etcd3 1.x');
  }
  return lease;
}
