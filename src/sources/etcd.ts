import type { EtcdClient } from '../etcd/client.js';
import { EtcdFailure, FAILURE_HINTS, isConfigurationFailure } from '../etcd/errors.js';
import type { EtcdApi, KvChange, KvStore, KvWatch } from '../etcd/store.js';
import type { Logger } from '../log.js';
import type { Entries } from '../model/types.js';

/**
 * A whole view of the load balancer's keys at one etcd revision. From EtcdSource, `entries` is
 * copied out of the source only when first read, so a burst of events costs one copy per apply
 * instead of one per event; read it before the next snapshot arrives (consumers keep only the
 * newest one), or the read throws instead of handing out the wrong revision's keys.
 */
export interface Snapshot {
  readonly entries: Entries;
  readonly revision: string;
}

/** What the source needs of the EtcdClient (a fake in unit tests). */
export type SourceClient = Pick<EtcdClient, 'api' | 'reason' | 'connection' | 'choose' | 'store' | 'decide'>;

export interface EtcdSourceOptions {
  readonly client: SourceClient;
  /** The load balancer's etcd path, without a trailing slash. */
  readonly prefix: string;
  readonly logger: Logger;
  readonly onSnapshot: (snapshot: Snapshot) => void;
  readonly maxBackoffMs?: number;
  /** How long a lost watch may take to resume by itself before the source reads everything again (default 5 s). */
  readonly resumeTimeoutMs?: number;
}

const RESUME_TIMEOUT_MS = 5000;

/** The etcd connection as the admin port shows it. */
export interface EtcdSourceStatus {
  readonly connected: boolean;
  /** The API in use; undefined while ETCD_API=auto watches both keyspaces. */
  readonly api: EtcdApi | undefined;
  readonly apiReason: string | undefined;
  readonly endpoints: readonly string[];
  /** Why the last attempt failed, while it keeps failing. */
  readonly failure: EtcdFailure | undefined;
}

/**
 * Reads the load balancer's keys once, then watches them from the next revision: never polls.
 * Every change is emitted as a full snapshot (Traefik's provider model), so consumers never
 * apply deltas. A dropped connection is resumed by the watch itself (from any member); when the
 * watch cannot resume (history compacted, credentials refused) the source starts over with a
 * fresh read, which is always correct. The same for the v3 and the v2 API; with ETCD_API=auto
 * and an empty prefix, both keyspaces are watched until the platform writes to one of them.
 */
export class EtcdSource {
  private entries = new Map<string, string>();
  private revision = '0';
  private watches: KvWatch[] = [];
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private resumeTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private generation = 0;
  /** Snapshots handed out so far; only the newest may still be read lazily. */
  private emitted = 0;
  private watching = false;
  private lastFailure: EtcdFailure | undefined;

  constructor(private readonly options: EtcdSourceOptions) {}

  start(): void {
    void this.connect();
  }

  /** True while a watch is established (the admin port's etcd connection state). */
  get connected(): boolean {
    return this.watching;
  }

  status(): EtcdSourceStatus {
    const { client } = this.options;
    return {
      connected: this.watching,
      api: client.api,
      apiReason: client.reason,
      endpoints: client.connection.endpoints,
      failure: this.lastFailure,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watching = false;
    clearTimeout(this.restartTimer);
    clearTimeout(this.resumeTimer);
    await this.dropWatches();
  }

  /** Forces a fresh read of every key, as after SIGHUP. */
  resync(): void {
    this.scheduleRestart(0, 'resync requested');
  }

  private async connect(): Promise<void> {
    const generation = ++this.generation;
    const { client, prefix, logger } = this.options;
    const current = () => !this.stopped && generation === this.generation;
    try {
      const decision = await client.choose(prefix);
      if (!current()) return;
      if (decision.api === undefined) {
        await this.watchBoth(generation);
        return;
      }
      if ('warning' in decision && decision.warning) logger.warn({ prefix, api: decision.api }, decision.warning);
      const store = client.store(decision.api);
      const listed = await store.list(prefix);
      if (!current()) return;
      this.entries = listed.entries;
      this.revision = listed.revision;
      this.emit();
      const watch = await store.watch(prefix, this.revision, {
        onChanges: (changes, revision) => this.onChanges(changes, revision),
        onLost: (failure) => this.scheduleRestart(this.backoff(), failure),
        onInterrupted: (failure) => this.interrupted(failure),
        onConnected: () => this.reconnected(store),
      });
      if (!current()) {
        await watch.cancel();
        return;
      }
      this.watches = [watch];
      this.established(store, decision.reason);
    } catch (error) {
      if (!current()) return;
      this.scheduleRestart(this.backoff(), asFailure(error));
    }
  }

  /**
   * ETCD_API=auto with nothing under the prefix in either keyspace: serve the empty set and watch
   * both; the first write (a Kontena master makes the `services` directory when it links a
   * service) decides the API for good, and the source starts over on it.
   */
  private async watchBoth(generation: number): Promise<void> {
    const { client, prefix, logger } = this.options;
    const stores = [client.store('v3'), client.store('v2')];
    const [v3, v2] = await Promise.all(stores.map((store) => store.list(prefix)));
    if (this.stopped || generation !== this.generation) return;
    this.entries = new Map();
    this.revision = v3!.revision;
    this.emit();
    const firstWrite = (store: KvStore) => () => {
      if (this.stopped || generation !== this.generation || client.api) return;
      client.decide(store.api, `the platform wrote to the prefix through the ${store.api} API first`);
      logger.info({ prefix, api: store.api }, `etcd API decided: the platform writes with ${store.api}`);
      this.generation++;
      void this.dropWatches().then(() => this.connect());
    };
    const watches = await Promise.all(stores.map((store, i) => store.watch(prefix, [v3!, v2!][i]!.revision, {
      onChanges: firstWrite(store),
      onLost: (failure) => this.scheduleRestart(this.backoff(), failure),
      onInterrupted: (failure) => this.interrupted(failure),
      onConnected: () => this.reconnected(store),
    })));
    if (this.stopped || generation !== this.generation) {
      await Promise.all(watches.map((w) => w.cancel()));
      return;
    }
    this.watches = watches;
    this.failures = 0;
    this.lastFailure = undefined;
    this.watching = true;
    logger.info({ prefix, api: 'undecided', endpoints: client.connection.endpoints }, 'watching etcd: both the v3 and the v2 keyspace, until the platform writes to one');
  }

  private onChanges(changes: readonly KvChange[], revision: string): void {
    for (const change of changes) {
      if (change.type === 'put') this.entries.set(change.key, change.value);
      else if (change.dir) this.deleteDir(change.key);
      else this.entries.delete(change.key);
    }
    this.revision = revision;
    if (changes.length > 0) this.emit();
  }

  /** A v2 recursive delete (the platform unlinking a service): everything under `dir`. */
  private deleteDir(dir: string): void {
    if (dir === '') {
      this.entries.clear();
      return;
    }
    const under = `${dir}/`;
    this.entries.delete(dir);
    for (const key of [...this.entries.keys()]) if (key.startsWith(under)) this.entries.delete(key);
  }

  private established(store: KvStore, reason: string): void {
    this.failures = 0;
    this.lastFailure = undefined;
    this.watching = true;
    this.options.logger.info({
      prefix: this.options.prefix, api: store.api, apiReason: reason, endpoints: store.endpoints, revision: this.revision, keys: this.entries.size,
    }, 'watching etcd');
  }

  private interrupted(failure: EtcdFailure): void {
    if (this.stopped || !this.watching) return;
    this.watching = false;
    this.lastFailure = failure;
    this.options.logger.warn({ code: failure.code, err: failure.message, lastRevision: this.revision }, 'etcd watch lost; resuming from the last revision when a member answers');
    // A watch that cannot come back by itself (an expired auth token the stream keeps reusing,
    // a member that answers but never resumes it) is started over from a fresh read.
    clearTimeout(this.resumeTimer);
    this.resumeTimer = setTimeout(() => {
      if (!this.watching) this.scheduleRestart(0, 'the etcd watch did not resume by itself; reading everything again');
    }, this.options.resumeTimeoutMs ?? RESUME_TIMEOUT_MS);
  }

  private reconnected(store: KvStore): void {
    if (this.stopped || this.watching) return;
    clearTimeout(this.resumeTimer);
    this.watching = true;
    this.lastFailure = undefined;
    this.options.logger.info({ api: store.api, revision: this.revision }, 'etcd watch resumed');
  }

  private scheduleRestart(delayMs: number, why: EtcdFailure | string): void {
    if (this.stopped) return;
    clearTimeout(this.resumeTimer);
    this.generation++;
    this.watching = false;
    const failure = typeof why === 'string' ? undefined : why;
    this.lastFailure = failure;
    const fields = { retryInMs: delayMs, lastRevision: this.revision, ...(failure ? { code: failure.code, err: failure.message } : {}) };
    if (failure === undefined) this.options.logger.info(fields, why as string);
    else if (isConfigurationFailure(failure)) this.options.logger.error(fields, FAILURE_HINTS[failure.code]);
    else this.options.logger.warn(fields, failure.code === 'history-lost' ? FAILURE_HINTS['history-lost'] : `cannot read from etcd: ${failure.message}`);
    void this.dropWatches();
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => void this.connect(), delayMs);
  }

  private async dropWatches(): Promise<void> {
    const watches = this.watches;
    this.watches = [];
    await Promise.all(watches.map((watch) => watch.cancel().catch(() => undefined)));
  }

  /** Capped exponential backoff: 100 ms, 200 ms, ... up to maxBackoffMs (default 5 s). */
  private backoff(): number {
    const delay = Math.min(100 * 2 ** this.failures, this.options.maxBackoffMs ?? 5000);
    this.failures++;
    return delay;
  }

  private emit(): void {
    const source = this;
    const generation = ++this.emitted;
    const revision = this.revision;
    let copy: Entries | undefined;
    const snapshot: Snapshot = {
      revision,
      get entries(): Entries {
        if (!copy) {
          if (generation !== source.emitted) throw new Error(`etcd snapshot at revision ${revision} read after a newer one arrived`);
          copy = new Map(source.entries);
        }
        return copy;
      },
    };
    this.options.onSnapshot(snapshot);
  }
}

function asFailure(error: unknown): EtcdFailure {
  return error instanceof EtcdFailure ? error : new EtcdFailure('other', (error as Error).message, { cause: error });
}
