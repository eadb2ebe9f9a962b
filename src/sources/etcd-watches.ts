import { EtcdFailure } from '../etcd/errors.js';
import type { EtcdApi, KvChange, KvStore, KvWatch } from '../etcd/store.js';

/** What the source learns from the watches it holds, for one generation of them. */
export interface WatchSetEvents {
  readonly onChanges: (api: EtcdApi, changes: readonly KvChange[], revision: string) => void;
  /** A watch ended for good (history gone, credentials refused): start over. */
  readonly onLost: (failure: EtcdFailure) => void;
  /** The first watch of the set dropped (the set was fully up until now). */
  readonly onDown: (failure: EtcdFailure) => void;
  /** Every watch of the set is up again. */
  readonly onUp: (api: EtcdApi) => void;
  /** A watch stayed down longer than `resumeTimeoutMs`: start over from a fresh read. */
  readonly onStalled: () => void;
}

export interface WatchSpec {
  readonly store: KvStore;
  readonly revision: string;
}

/** Longest a watch may take to be created before the attempt counts as failed. */
const CREATE_TIMEOUT_MS = 10_000;

/**
 * The watches of one read of the prefix: one, or with ETCD_API=auto and an empty prefix one per
 * keyspace. The set is up only while every watch is up; each watch that drops must come back by
 * itself within `resumeTimeoutMs`, or the set reports itself stalled. Once closed, nothing a
 * watch says reaches the source any more (a late event from a cancelled watch is dropped).
 */
export class WatchSet {
  private readonly watches: KvWatch[] = [];
  /** The watches down, each with its deadline to come back (none for a store whose watches always do). */
  private readonly down = new Map<EtcdApi, NodeJS.Timeout | undefined>();
  private closed = false;

  constructor(
    private readonly events: WatchSetEvents,
    private readonly resumeTimeoutMs: number,
  ) {}

  /** True while every watch is up (none dropped and not yet resumed). */
  get up(): boolean {
    return this.down.size === 0;
  }

  /**
   * Opens every watch, or none: when one cannot be created the others are cancelled and the error
   * thrown. The set can be closed while this runs (the source started over meanwhile).
   */
  async open(prefix: string, specs: readonly WatchSpec[]): Promise<void> {
    const results = await Promise.allSettled(specs.map(({ store, revision }) => this.openOne(prefix, store, revision)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.close();
      throw failed.reason;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.down.values()) clearTimeout(timer);
    this.down.clear();
    await Promise.all(this.watches.splice(0).map((watch) => watch.cancel().catch(() => undefined)));
  }

  private async openOne(prefix: string, store: KvStore, revision: string): Promise<void> {
    const api = store.api;
    let timer: NodeJS.Timeout | undefined;
    const creating = store.watch(prefix, revision, {
      onChanges: (changes, at) => this.closed || this.events.onChanges(api, changes, at),
      onLost: (failure) => this.closed || this.events.onLost(failure),
      onInterrupted: (failure) => this.closed || this.interrupted(api, failure, store.watchResumes === true),
      onConnected: () => this.closed || this.resumed(api),
    });
    // A watch created after the deadline (or after close) is cancelled as soon as it exists.
    void creating.then(
      (watch) => {
        if (this.closed) void watch.cancel();
        else this.watches.push(watch);
      },
      () => undefined,
    );
    try {
      await Promise.race([
        creating,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new EtcdFailure('unreachable', `the ${api} watch was not created within ${CREATE_TIMEOUT_MS / 1000} s`)),
            CREATE_TIMEOUT_MS,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  private interrupted(api: EtcdApi, failure: EtcdFailure, resumes: boolean): void {
    if (this.down.has(api)) return;
    const wasUp = this.down.size === 0;
    // A watch that may not come back by itself (a v2 member that answers but never resumes it)
    // is started over from a fresh read; a v3 watch always resumes, from its last revision.
    this.down.set(api, resumes ? undefined : setTimeout(() => this.closed || this.events.onStalled(), this.resumeTimeoutMs));
    if (wasUp) this.events.onDown(failure);
  }

  private resumed(api: EtcdApi): void {
    if (!this.down.has(api)) return;
    clearTimeout(this.down.get(api));
    this.down.delete(api);
    if (this.down.size === 0) this.events.onUp(api);
  }
}
