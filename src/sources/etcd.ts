import type { EtcdClient } from '../etcd/client.js';
import { EtcdFailure, FAILURE_HINTS, isConfigurationFailure } from '../etcd/errors.js';
import type { EtcdApi, KvChange, KvStore } from '../etcd/store.js';
import type { Logger } from '../log.js';
import type { Snapshot } from '../model/snapshot.js';
import { Backoff } from '../util/backoff.js';
import { EntryStore } from './entry-store.js';
import { WatchSet, type WatchSetEvents, type WatchSpec } from './etcd-watches.js';

export type { Snapshot } from '../model/snapshot.js';

/** What the source needs of the EtcdClient (a fake in unit tests). */
export type SourceClient = Pick<EtcdClient, 'api' | 'reason' | 'connection' | 'choose' | 'store' | 'decide'>;

export interface EtcdSourceOptions {
  readonly client: SourceClient;
  /** The load balancer's etcd path, without a trailing slash. */
  readonly prefix: string;
  readonly logger: Logger;
  readonly onSnapshot: (snapshot: Snapshot) => void;
  /** Longest wait between two attempts (default 5 s; the first waits 100 ms). */
  readonly maxBackoffMs?: number;
  /**
   * How long a lost watch may take to resume by itself before the source reads everything again
   * (default 5 s); not for a store whose watches always resume by themselves (v3).
   */
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
 * Every change is emitted as a snapshot of the whole keyspace (Traefik's provider model), so
 * consumers never apply deltas; it is read by group and says which groups changed since an
 * earlier one (EntryStore), so that a change to one instance costs what it touches. A dropped
 * connection is resumed by the watch itself (from any member). A watch etcd ended (credentials
 * refused) is opened again from the last revision; only when etcd no longer has the history
 * since then (compacted, or a restored cluster) does the source start over with a fresh read.
 * The same for the v3 and the v2 API; with ETCD_API=auto and an empty prefix, both keyspaces are
 * watched until the platform writes to one of them.
 */
export class EtcdSource {
  private readonly entries = new EntryStore();
  private revision = '0';
  private watches: WatchSet | undefined;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  /** The store watched (undefined while ETCD_API=auto watches both): a lost watch resumes on it. */
  private watched: KvStore | undefined;
  private readonly retry: Backoff;
  private generation = 0;
  private watching = false;
  private lastFailure: EtcdFailure | undefined;
  /** The failure last logged at its full level: the same one again is logged at debug only. */
  private reported: string | undefined;

  constructor(private readonly options: EtcdSourceOptions) {
    this.retry = new Backoff({ firstMs: 100, maxMs: options.maxBackoffMs ?? 5000 });
  }

  start(): void {
    void this.connect();
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
        await this.watchBoth(current);
        return;
      }
      if ('warning' in decision && decision.warning) logger.warn({ prefix, api: decision.api }, decision.warning);
      const store = client.store(decision.api);
      const listed = await store.list(prefix);
      if (!current()) return;
      this.watched = store;
      this.entries.replace(listed.entries);
      this.revision = listed.revision;
      this.emit();
      await this.openWatches([{ store, revision: this.revision }], (_, changes, revision) => this.onChanges(changes, revision));
      if (!current()) return;
      this.established(
        {
          prefix,
          api: store.api,
          apiReason: decision.reason,
          endpoints: store.endpoints,
          revision: this.revision,
          keys: this.entries.size,
        },
        'watching etcd',
      );
    } catch (error) {
      if (!current()) return;
      this.scheduleRestart(this.retry.next(), asFailure(error));
    }
  }

  /** Opens the watch again from the last revision read: nothing is read again. */
  private async resume(store: KvStore): Promise<void> {
    const generation = ++this.generation;
    try {
      await this.openWatches([{ store, revision: this.revision }], (_, changes, revision) => this.onChanges(changes, revision));
      if (this.stopped || generation !== this.generation) return;
      this.established({ api: store.api, revision: this.revision }, 'etcd watch resumed');
    } catch (error) {
      if (this.stopped || generation !== this.generation) return;
      this.lost(asFailure(error));
    }
  }

  /** A watch ended for good: resumed from the last revision, or everything read again when etcd lost the history since. */
  private lost(failure: EtcdFailure): void {
    const store = this.watched;
    if (failure.code === 'history-lost' || !store) this.scheduleRestart(this.retry.next(), failure);
    else this.scheduleRestart(this.retry.next(), failure, () => this.resume(store));
  }

  /**
   * ETCD_API=auto with nothing under the prefix in either keyspace: serve the empty set and watch
   * both; the first write (a Kontena master makes the `services` directory when it links a
   * service) decides the API for good, and the source starts over on it.
   */
  private async watchBoth(current: () => boolean): Promise<void> {
    const { client, prefix, logger } = this.options;
    const stores = [client.store('v3'), client.store('v2')];
    const listed = await Promise.all(stores.map((store) => store.list(prefix)));
    if (!current()) return;
    this.watched = undefined;
    this.entries.replace(new Map());
    this.revision = listed[0]!.revision;
    this.emit();
    await this.openWatches(
      stores.map((store, i) => ({ store, revision: listed[i]!.revision })),
      (api) => {
        if (!current() || client.api) return;
        client.decide(api, `the platform wrote to the prefix through the ${api} API first`);
        logger.info({ prefix, api }, `etcd API decided: the platform writes with ${api}`);
        this.generation++;
        void this.dropWatches().then(() => this.connect());
      },
    );
    if (!current()) return;
    this.established(
      { prefix, api: 'undecided', endpoints: client.connection.endpoints },
      'watching etcd: both the v3 and the v2 keyspace, until the platform writes to one',
    );
  }

  /**
   * Opens the watches of this read. The set is the source's at once, before it is open: a restart
   * meanwhile closes it, and a closed set reports nothing (no late restart from a superseded one).
   */
  private async openWatches(specs: readonly WatchSpec[], onChanges: WatchSetEvents['onChanges']): Promise<void> {
    const watches = new WatchSet(
      {
        onChanges,
        onLost: (failure) => this.lost(failure),
        onDown: (failure) => this.interrupted(failure),
        onUp: (api) => this.resumed(api),
        onStalled: () => this.scheduleRestart(0, 'the etcd watch did not resume by itself; reading everything again'),
      },
      this.options.resumeTimeoutMs ?? RESUME_TIMEOUT_MS,
    );
    await this.dropWatches();
    this.watches = watches;
    await watches.open(this.options.prefix, specs);
  }

  private onChanges(changes: readonly KvChange[], revision: string): void {
    for (const change of changes) {
      if (change.type === 'put') this.entries.set(change.key, change.value);
      else if (change.dir) this.entries.deleteDir(change.key);
      else this.entries.delete(change.key);
    }
    this.revision = revision;
    if (changes.length > 0) this.emit();
  }

  private established(fields: Record<string, unknown>, message: string): void {
    this.retry.reset();
    this.lastFailure = undefined;
    this.reported = undefined;
    // A watch of the set may already have dropped while the others were being created.
    this.watching = this.watches?.up ?? false;
    this.options.logger.info(fields, message);
  }

  private interrupted(failure: EtcdFailure): void {
    if (this.stopped) return;
    this.watching = false;
    this.lastFailure = failure;
    this.options.logger.warn(
      { code: failure.code, err: failure.message, lastRevision: this.revision },
      'etcd watch lost; resuming from the last revision when a member answers',
    );
  }

  private resumed(api: EtcdApi): void {
    if (this.stopped) return;
    this.watching = true;
    this.lastFailure = undefined;
    this.options.logger.info({ api, revision: this.revision }, 'etcd watch resumed');
  }

  /** Drops the watches and, after `delayMs`, reads everything again (or does `then`). */
  private scheduleRestart(delayMs: number, why: EtcdFailure | string, then: () => Promise<void> = () => this.connect()): void {
    if (this.stopped) return;
    this.generation++;
    this.watching = false;
    const failure = typeof why === 'string' ? undefined : why;
    this.lastFailure = failure;
    this.logRestart(delayMs, why);
    void this.dropWatches();
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => void then(), delayMs);
  }

  /**
   * One line per cause: a failure that repeats itself on every retry (a wrong password while an
   * operator fixes it) is logged in full once, then at debug level with the next retry's delay.
   */
  private logRestart(delayMs: number, why: EtcdFailure | string): void {
    const { logger } = this.options;
    if (typeof why === 'string') {
      logger.info({ retryInMs: delayMs, lastRevision: this.revision }, why);
      return;
    }
    const fields = { retryInMs: delayMs, lastRevision: this.revision, code: why.code, err: why.message };
    const message =
      why.code === 'history-lost'
        ? FAILURE_HINTS['history-lost']
        : isConfigurationFailure(why)
          ? FAILURE_HINTS[why.code]
          : `cannot read from etcd: ${why.message}`;
    // The code, not the message: the message names the member that answered, which changes from
    // one attempt to the next in a cluster.
    const key = why.code;
    if (key === this.reported) logger.debug(fields, `${message} (again)`);
    else if (isConfigurationFailure(why)) logger.error(fields, message);
    else logger.warn(fields, message);
    this.reported = key;
  }

  private async dropWatches(): Promise<void> {
    const watches = this.watches;
    this.watches = undefined;
    await watches?.close();
  }

  private emit(): void {
    this.options.onSnapshot(this.entries.seal(this.revision));
  }
}

function asFailure(error: unknown): EtcdFailure {
  return error instanceof EtcdFailure ? error : new EtcdFailure('other', (error as Error).message, { cause: error });
}
