import { EtcdFailure } from './errors.js';
import type { KvLease } from './store.js';
import { V2_CODES, failureOf, indexOf, succeeded } from './v2-http.js';
import type { V2Store } from './v2-store.js';

/**
 * A lease on the v2 API, which has none: every key is written with the TTL and refreshed every
 * TTL/3 with `refresh=true` (the TTL is extended without waking watchers) and `prevValue` (a
 * key that another owner took since is never extended). A key found gone or changed, or no
 * successful refresh for a whole TTL, ends the lease: the same contract as a v3 lease.
 */
export class V2Lease implements KvLease {
  private readonly keys = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private lastRenewal = Date.now();
  private ended = false;
  private refreshing = false;
  private readonly lostListeners: ((failure: EtcdFailure) => void)[] = [];
  private readonly renewedListeners: (() => void)[] = [];

  constructor(
    private readonly store: V2Store,
    private readonly ttlSeconds: number,
  ) {}

  async put(key: string, value: string): Promise<void> {
    this.assertLive();
    await this.store.write('PUT', key, { form: { value, ttl: String(this.ttlSeconds) } });
    this.hold(key, value);
  }

  async claim(key: string, value: string): Promise<{ created: boolean; holder: string | undefined; revision: string }> {
    this.assertLive();
    const response = await this.store.http.keys('PUT', key, { form: { value, ttl: String(this.ttlSeconds) }, query: { prevExist: 'false' } });
    const revision = indexOf(response);
    if (succeeded(response)) {
      this.hold(key, value);
      return { created: true, holder: value, revision };
    }
    if (response.body.errorCode !== V2_CODES.nodeExists) throw failureOf(response, `creating ${key}`);
    const holder = await this.store.get(key);
    // Values are unique per owner: a key holding ours is ours (an earlier claim); keep refreshing it.
    if (holder === value) this.hold(key, value);
    return { created: false, holder, revision };
  }

  async revoke(): Promise<void> {
    const keys = [...this.keys];
    this.stop();
    await Promise.all(
      keys.map(([key, value]) =>
        this.store.write('DELETE', key, { query: { prevValue: value } }, [V2_CODES.keyNotFound, V2_CODES.compareFailed]).catch(() => undefined),
      ),
    );
  }

  release(): void {
    this.stop();
  }

  onLost(listener: (failure: EtcdFailure) => void): void {
    this.lostListeners.push(listener);
  }

  onRenewed(listener: () => void): void {
    this.renewedListeners.push(listener);
  }

  private hold(key: string, value: string): void {
    this.keys.set(key, value);
    this.lastRenewal = Date.now();
    this.timer ??= setInterval(() => void this.refresh(), (this.ttlSeconds * 1000) / 3);
  }

  private async refresh(): Promise<void> {
    // A refresh that outlasts the interval (a slow member) must not overlap the next one.
    if (this.ended || this.refreshing) return;
    this.refreshing = true;
    try {
      for (const [key, value] of [...this.keys]) {
        const response = await this.store.http.keys('PUT', key, {
          form: { refresh: 'true', ttl: String(this.ttlSeconds) },
          query: { prevValue: value },
        });
        if (this.ended) return;
        const code = response.body.errorCode;
        // Another owner took a key, or the lease's first key (what the owner announced) is gone:
        // the lease is over. A later key deleted by someone else (the ACME leader removing a
        // finished token's confirmations) just leaves the lease, as a deleted key leaves a v3 lease.
        if (code === V2_CODES.compareFailed || (code === V2_CODES.keyNotFound && key === this.keys.keys().next().value)) {
          this.lose(new EtcdFailure('other', `${key} expired or was taken over before it was refreshed`));
          return;
        }
        if (code === V2_CODES.keyNotFound) {
          this.keys.delete(key);
          continue;
        }
        if (!succeeded(response)) throw failureOf(response, `refreshing ${key}`);
      }
      this.lastRenewal = Date.now();
      for (const listener of this.renewedListeners) listener();
    } catch (error) {
      if (Date.now() - this.lastRenewal >= this.ttlSeconds * 1000) {
        this.lose(error instanceof EtcdFailure ? error : new EtcdFailure('unreachable', (error as Error).message));
      }
    } finally {
      this.refreshing = false;
    }
  }

  private lose(failure: EtcdFailure): void {
    if (this.ended) return;
    this.stop();
    for (const listener of this.lostListeners) listener(failure);
  }

  private stop(): void {
    this.ended = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private assertLive(): void {
    if (this.ended) throw new EtcdFailure('other', 'the lease has ended');
  }
}
