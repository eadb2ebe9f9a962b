import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
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

export interface EtcdSourceOptions {
  readonly client: Etcd3;
  /** The load balancer's etcd path, without a trailing slash. */
  readonly prefix: string;
  readonly logger: Logger;
  readonly onSnapshot: (snapshot: Snapshot) => void;
  readonly onConnectionChange?: (connected: boolean) => void;
  readonly maxBackoffMs?: number;
}

/**
 * Reads the load balancer's keys once, then watches them from the next revision: never polls.
 * Every change is emitted as a full snapshot (Traefik's provider model), so consumers never
 * apply deltas. When the watch is lost (etcd restarted, compacted past our revision, network
 * gone) the source starts over with a fresh read, which is always correct: a compacted or
 * wiped history cannot be resumed, and a fresh read costs one range request.
 */
export class EtcdSource {
  private readonly keyPrefix: string;
  private entries = new Map<string, string>();
  private revision = '0';
  private watcher: Watcher | undefined;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private generation = 0;
  /** Snapshots handed out so far; only the newest may still be read lazily. */
  private emitted = 0;
  private watching = false;

  constructor(private readonly options: EtcdSourceOptions) {
    this.keyPrefix = `${options.prefix}/`;
  }

  start(): void {
    void this.connect();
  }

  /** True while a watch is established (the admin port's etcd connection state). */
  get connected(): boolean {
    return this.watching;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watching = false;
    clearTimeout(this.restartTimer);
    await this.dropWatcher();
  }

  /** Forces a fresh read of every key, as after SIGHUP. */
  resync(): void {
    this.scheduleRestart(0, 'resync requested');
  }

  private async connect(): Promise<void> {
    const generation = ++this.generation;
    const { client, logger } = this.options;
    try {
      const listed = await client.getAll().prefix(this.keyPrefix).exec();
      if (this.stopped || generation !== this.generation) return;
      this.entries = new Map((listed.kvs ?? []).map((kv) => [this.relative(kv), kv.value.toString('utf8')]));
      this.revision = String(listed.header.revision);
      this.emit();

      const watcher = await client.watch().prefix(this.keyPrefix).startRevision(nextRevision(this.revision)).create();
      if (this.stopped || generation !== this.generation) {
        await watcher.cancel();
        return;
      }
      this.watcher = watcher;
      this.failures = 0;
      this.watching = true;
      this.options.onConnectionChange?.(true);
      logger.info({ prefix: this.options.prefix, revision: this.revision, keys: this.entries.size }, 'watching etcd');

      watcher.on('data', (response) => {
        for (const event of response.events) {
          const key = this.relative(event.kv);
          if (event.type === 'Put') this.entries.set(key, event.kv.value.toString('utf8'));
          else this.entries.delete(key);
        }
        this.revision = String(response.header.revision);
        if (response.events.length > 0) this.emit();
      });
      watcher.on('disconnected', (error: Error) => this.scheduleRestart(this.backoff(), `etcd watch lost: ${error.message}`));
      watcher.on('error', (error: Error) => this.scheduleRestart(this.backoff(), `etcd watch cancelled: ${error.message}`));
    } catch (error) {
      if (this.stopped || generation !== this.generation) return;
      this.scheduleRestart(this.backoff(), `cannot read from etcd: ${(error as Error).message}`);
    }
  }

  private scheduleRestart(delayMs: number, reason: string): void {
    if (this.stopped) return;
    this.generation++;
    this.watching = false;
    this.options.onConnectionChange?.(false);
    this.options.logger.warn({ retryInMs: delayMs, lastRevision: this.revision }, reason);
    void this.dropWatcher();
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => void this.connect(), delayMs);
  }

  private async dropWatcher(): Promise<void> {
    const watcher = this.watcher;
    this.watcher = undefined;
    if (!watcher) return;
    watcher.removeAllListeners();
    watcher.on('error', () => undefined);
    await watcher.cancel().catch(() => undefined);
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

  private relative(kv: IKeyValue): string {
    return kv.key.toString('utf8').slice(this.keyPrefix.length);
  }
}

function nextRevision(revision: string): string {
  return (BigInt(revision) + 1n).toString();
}
