import { isBrokenCircuitError } from 'cockatiel';
import {
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCOutOfRangeError,
  type Etcd3,
  type Lease,
  type Namespace,
  type Watcher,
} from 'etcd3';
import { Backoff } from '../util/backoff.js';
import type { EtcdConnection } from './connection.js';
import { describeTls, EtcdFailure, firstLine, looksLikeTls } from './errors.js';
import { probeTls } from './tls-probe.js';
import type { FencedResult, KvFence, KvChange, KvLease, KvListing, KvOp, KvStore, KvWatch, KvWatchHandlers } from './store.js';

/** The etcd v3 API through the etcd3 library (gRPC): watches resume by themselves across members. */
export class V3Store implements KvStore {
  readonly api = 'v3' as const;
  readonly watchResumes = true;
  readonly endpoints: readonly string[];

  /** Namespaces by prefix: one each, as each holds its own watch stream. */
  private readonly namespaces = new Map<string, Namespace>();

  constructor(
    private readonly connection: EtcdConnection,
    readonly client: Etcd3,
  ) {
    this.endpoints = connection.endpoints;
  }

  async list(prefix: string): Promise<KvListing> {
    const listed = await this.call(() => this.namespace(prefix).getAll().exec());
    return {
      entries: new Map((listed.kvs ?? []).map((kv) => [kv.key.toString('utf8'), kv.value.toString('utf8')])),
      revision: String(listed.header.revision),
    };
  }

  async hasKeys(prefix: string): Promise<boolean> {
    return (await this.call(() => this.namespace(prefix).getAll().count())) > 0;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.call(() => this.client.get(key).string())) ?? undefined;
  }

  async put(key: string, value: string): Promise<void> {
    await this.call(() => this.client.put(key).value(value).exec());
  }

  async delete(key: string): Promise<void> {
    await this.call(() => this.client.delete().key(key).exec());
  }

  /**
   * The library's watcher reconnects (to any member) and resumes from the last revision it saw,
   * however long the connection stays down: the watch is never given up for a dropped connection,
   * only when etcd cancels it (history compacted, access refused) or went back in revision.
   */
  async watch(prefix: string, revision: string, handlers: KvWatchHandlers): Promise<KvWatch> {
    const namespace = this.namespace(prefix);
    const watcher: Watcher = await this.call(() =>
      namespace
        .watch()
        .prefix('')
        .startRevision((BigInt(revision) + 1n).toString())
        .create(),
    );
    let done = false;
    let cancelled = false;
    let seen = BigInt(revision);
    const nudge = new ResumeNudge(
      () =>
        void namespace
          .getAll()
          .count()
          .catch(() => undefined),
    );
    watcher.on('data', (response) => {
      seen = BigInt(response.header.revision);
      // Keys come relative to the namespace (the prefix and its slash taken off).
      const changes: KvChange[] = response.events.map((event) => {
        const key = event.kv.key.toString('utf8');
        return event.type === 'Put' ? { type: 'put', key, value: event.kv.value.toString('utf8') } : { type: 'delete', key };
      });
      if (changes.length > 0) handlers.onChanges(changes, String(response.header.revision));
    });
    watcher.on('disconnected', (error: Error) => {
      nudge.start();
      handlers.onInterrupted?.(classifyV3(error));
    });
    watcher.on('connected', (response: { header: { revision: string } }) => {
      nudge.stop();
      // A cluster restored from an old backup or rebuilt empty has an older revision: resuming
      // would wait for a revision that means something else there. Read everything again.
      if (BigInt(response.header.revision) < seen) {
        done = true;
        handlers.onLost(
          new EtcdFailure('history-lost', `etcd is at revision ${response.header.revision}, behind the ${seen} already seen (a new or restored cluster)`),
        );
        return;
      }
      handlers.onConnected?.();
    });
    // A cancelled watch (compacted past our revision, or refused) does not come back. etcd 3.4
    // cancels a compacted watch without a reason (the library gets only the compact revision,
    // which it does not pass on), so the history is asked for itself.
    watcher.on('error', (error: Error) => {
      if (done) return;
      done = true;
      nudge.stop();
      void this.historyLost(namespace, seen, error).then((lost) => {
        if (!cancelled) handlers.onLost(lost ?? classifyV3(error));
      });
    });
    return {
      cancel: async () => {
        done = true;
        cancelled = true;
        nudge.stop();
        watcher.removeAllListeners();
        watcher.on('error', () => undefined);
        await watcher.cancel().catch(() => undefined);
      },
    };
  }

  lease(ttlSeconds: number): KvLease {
    return new V3Lease(this, this.client.lease(ttlSeconds));
  }

  async fencedWrite(fence: KvFence, ops: readonly KvOp[]): Promise<FencedResult> {
    let txn = 'lease' in fence ? this.client.if(fence.key, 'Lease', '==', fence.lease) : this.client.if(fence.key, 'Value', '==', fence.value);
    for (const op of ops) if (op.type === 'create') txn = txn.and(op.key, 'Create', '==', 0);
    const result = await this.call(() =>
      txn
        .then(
          ...ops.map((op) => {
            switch (op.type) {
              case 'put':
              case 'create':
                return this.client.put(op.key).value(op.value);
              case 'delete':
                return this.client.delete().key(op.key);
              default:
                return this.client.delete().prefix(op.key);
            }
          }),
        )
        .commit(),
    );
    return { succeeded: result.succeeded, revision: String(result.header.revision) };
  }

  close(): void {
    this.client.close();
  }

  /**
   * Whether etcd still has the history after `seen`: a read as of that revision is refused with
   * ErrCompacted once it was compacted away. A 'history-lost' failure when so, else undefined.
   */
  private async historyLost(namespace: Namespace, seen: bigint, error: Error): Promise<EtcdFailure | undefined> {
    if (error instanceof GRPCOutOfRangeError) return new EtcdFailure('history-lost', firstLine(error.message), { cause: error });
    try {
      await namespace.getAll().revision(seen.toString()).limit(1).keys();
      return undefined;
    } catch (probe) {
      // etcd answers a read at a compacted revision with gRPC OUT_OF_RANGE (ErrCompacted): the library's class says so.
      return probe instanceof GRPCOutOfRangeError
        ? new EtcdFailure('history-lost', `the watch was cancelled: ${firstLine(probe.message)}`, { cause: error })
        : undefined;
    }
  }

  /** The keys under `prefix` + '/', with that taken off (etcd3's namespace, not slicing by hand). */
  private namespace(prefix: string): Namespace {
    let namespace = this.namespaces.get(prefix);
    if (!namespace) {
      namespace = this.client.namespace(`${prefix}/`);
      this.namespaces.set(prefix, namespace);
    }
    return namespace;
  }

  /** Runs a request, turning whatever the library throws into an EtcdFailure with a code. */
  async call<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const failure = classifyV3(error as Error);
      // 'unreachable' over https may be a refused handshake that gRPC did not name: see probeTls.
      if (failure.code === 'unreachable') throw (await probeTls(this.connection)) ?? failure;
      // Without a token, etcd (--client-cert-auth) takes the certificate's common name as the user
      // name, whether or not such a user exists: say so, or "permission denied" names no one.
      if (failure.code === 'permission' && !this.connection.auth && this.connection.tls?.cert !== undefined) {
        throw new EtcdFailure('permission', `${failure.message} (no ETCD_USERNAME is set: etcd took the client certificate's common name as the user name)`, {
          cause: error,
        });
      }
      throw failure;
    }
  }
}

class V3Lease implements KvLease {
  constructor(
    private readonly store: V3Store,
    private readonly lease: Lease,
  ) {}

  async put(key: string, value: string): Promise<void> {
    await this.store.call(() => this.lease.put(key).value(value).exec());
  }

  async claim(key: string, value: string): Promise<{ created: boolean; holder: string | undefined; revision: string }> {
    const leaseId = await this.store.call(() => this.lease.grant());
    const { client } = this.store;
    const result = await this.store.call(() =>
      client.if(key, 'Create', '==', 0).then(client.put(key).value(value).lease(leaseId)).else(client.get(key)).commit(),
    );
    const holder = result.succeeded ? value : result.responses[0]?.response_range?.kvs?.[0]?.value?.toString('utf8');
    return { created: result.succeeded, holder, revision: String(result.header.revision) };
  }

  async revoke(): Promise<void> {
    await this.lease.revoke().catch(() => undefined);
  }

  release(): void {
    this.lease.release();
  }

  onLost(listener: (failure: EtcdFailure) => void): void {
    this.lease.on('lost', (error: Error) => listener(classifyV3(error)));
  }

  onRenewed(listener: () => void): void {
    this.lease.on('keepaliveSucceeded', () => listener());
  }
}

/**
 * While a watch is down, a cheap read now and then: the library renews an expired auth token only
 * when a unary call is refused with it (never for its watch stream, which would retry the stale
 * token for ever, e.g. after etcd restarted), so the read is what lets the watch resume.
 */
class ResumeNudge {
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff = new Backoff({ firstMs: 5000, maxMs: 30_000 });

  constructor(private readonly read: () => void) {}

  start(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.read();
      this.start();
    }, this.backoff.next());
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.backoff.reset();
  }
}

/** etcd's ErrCompacted (mvcc): the revision a watch asks for is gone from the history. */

/**
 * etcd's own error strings (etcdserver/api/v3rpc/rpctypes) for credentials it cannot use at all,
 * which the etcd3 library has no error class for: they are etcd's stable error identities, as
 * the library's own message-to-class table treats the others.
 */
const AUTH_SETUP_ERRORS = ['etcdserver: authentication is not enabled', 'etcdserver: user name is empty'];

/** What the etcd3 library (and gRPC under it) threw, as a failure code and one clean line. */
export function classifyV3(error: Error): EtcdFailure {
  if (error instanceof EtcdFailure) return error;
  // The member circuits (v3-fault-handling.ts) are all open: every member failed just now.
  if (isBrokenCircuitError(error)) return new EtcdFailure('unreachable', 'every etcd member failed within the last second', { cause: error });
  const message = firstLine(error.message);
  if (error instanceof EtcdAuthenticationFailedError) return new EtcdFailure('auth', `authentication failed: ${message}`, { cause: error });
  if (error instanceof EtcdPermissionDeniedError) return new EtcdFailure('permission', `permission denied: ${message}`, { cause: error });
  if (error instanceof EtcdInvalidAuthTokenError || AUTH_SETUP_ERRORS.some((text) => message.includes(text)))
    return new EtcdFailure('auth', message, { cause: error });
  if (looksLikeTls(message)) return new EtcdFailure('tls', describeTls(message), { cause: error });
  return new EtcdFailure('unreachable', message, { cause: error });
}
