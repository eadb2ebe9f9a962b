import { isBrokenCircuitError } from 'cockatiel';
import {
  EtcdAuthenticationFailedError, EtcdInvalidAuthTokenError, EtcdPermissionDeniedError, Etcd3, type Lease, type Watcher,
} from 'etcd3';
import type { EtcdConnection } from './connection.js';
import { describeTls, EtcdFailure, firstLine, looksLikeTls } from './errors.js';
import { probeTls } from './tls-probe.js';
import { v3FaultHandling } from './v3-fault-handling.js';
import type { FencedResult, KvFence, KvChange, KvLease, KvListing, KvOp, KvStore, KvWatch, KvWatchHandlers } from './store.js';

/** The etcd v3 API through the etcd3 library (gRPC): watches resume by themselves across members. */
export class V3Store implements KvStore {
  readonly api = 'v3' as const;
  readonly endpoints: readonly string[];
  readonly client: Etcd3;

  constructor(private readonly connection: EtcdConnection) {
    this.endpoints = connection.endpoints;
    this.client = new Etcd3({
      // No dialTimeout: etcd3 1.1.2 accepts the option but never reads it.
      hosts: [...connection.endpoints],
      ...(connection.tls ? {
        credentials: {
          // gRPC needs a root; without ETCD_CA_FILE the system's trust store is used (an empty buffer does not work).
          rootCertificate: connection.tls.ca === undefined ? (undefined as unknown as Buffer) : Buffer.from(connection.tls.ca),
          ...(connection.tls.key !== undefined ? { privateKey: Buffer.from(connection.tls.key) } : {}),
          ...(connection.tls.cert !== undefined ? { certChain: Buffer.from(connection.tls.cert) } : {}),
        },
      } : {}),
      ...(connection.auth ? { auth: { username: connection.auth.username, password: connection.auth.password } } : {}),
      // gRPC's own reconnect backoff grows to 120 s and the library's watch backoff to 30 s: after
      // a member dies, the watch would come back seconds late. Both stay near a second here.
      // Keepalive pings notice a member that vanished without closing the connection (power
      // loss, partition) within about 13 s; etcd accepts pings every 5 s or more.
      grpcOptions: {
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 2000,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 3000,
        'grpc.keepalive_permit_without_calls': 1,
      },
      faultHandling: v3FaultHandling(connection.endpoints.length),
    });
  }

  async list(prefix: string): Promise<KvListing> {
    const start = prefix.length + 1;
    const listed = await this.call(() => this.client.getAll().prefix(`${prefix}/`).exec());
    return {
      entries: new Map((listed.kvs ?? []).map((kv) => [kv.key.toString('utf8').slice(start), kv.value.toString('utf8')])),
      revision: String(listed.header.revision),
    };
  }

  async hasKeys(prefix: string): Promise<boolean> {
    return (await this.call(() => this.client.getAll().prefix(`${prefix}/`).count())) > 0;
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

  async watch(prefix: string, revision: string, handlers: KvWatchHandlers): Promise<KvWatch> {
    const start = prefix.length + 1;
    const watcher: Watcher = await this.call(() =>
      this.client.watch().prefix(`${prefix}/`).startRevision((BigInt(revision) + 1n).toString()).create());
    let done = false;
    let seen = BigInt(revision);
    watcher.on('data', (response) => {
      seen = BigInt(response.header.revision);
      const changes: KvChange[] = response.events.map((event) => {
        const key = event.kv.key.toString('utf8').slice(start);
        return event.type === 'Put' ? { type: 'put', key, value: event.kv.value.toString('utf8') } : { type: 'delete', key };
      });
      if (changes.length > 0) handlers.onChanges(changes, String(response.header.revision));
    });
    // The library reconnects (to any member) and resumes from the last revision it saw.
    watcher.on('disconnected', (error: Error) => handlers.onInterrupted?.(classifyV3(error)));
    watcher.on('connected', (response: { header: { revision: string } }) => {
      // A cluster restored from an old backup or rebuilt empty has an older revision: resuming
      // would wait for a revision that means something else there. Read everything again.
      if (BigInt(response.header.revision) < seen) {
        done = true;
        handlers.onLost(new EtcdFailure('history-lost', `etcd is at revision ${response.header.revision}, behind the ${seen} already seen (a new or restored cluster)`));
        return;
      }
      handlers.onConnected?.();
    });
    // A cancelled watch (compacted past our revision, or refused) does not come back.
    watcher.on('error', (error: Error) => {
      if (done) return;
      done = true;
      const failure = classifyV3(error);
      handlers.onLost(/compact/i.test(error.message) ? new EtcdFailure('history-lost', firstLine(error.message), { cause: error }) : failure);
    });
    return {
      cancel: async () => {
        done = true;
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
    const result = await this.call(() => txn.then(...ops.map((op) => {
      switch (op.type) {
        case 'put':
        case 'create':
          return this.client.put(op.key).value(op.value);
        case 'delete':
          return this.client.delete().key(op.key);
        case 'delete-prefix':
          return this.client.delete().prefix(op.key);
      }
    })).commit());
    return { succeeded: result.succeeded, revision: String(result.header.revision) };
  }

  close(): void {
    this.client.close();
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
        throw new EtcdFailure('permission', `${failure.message} (no ETCD_USERNAME is set: etcd took the client certificate's common name as the user name)`, { cause: error });
      }
      throw failure;
    }
  }
}

class V3Lease implements KvLease {
  constructor(private readonly store: V3Store, private readonly lease: Lease) {}

  async put(key: string, value: string): Promise<void> {
    await this.store.call(() => this.lease.put(key).value(value).exec());
  }

  async claim(key: string, value: string): Promise<{ created: boolean; holder: string | undefined; revision: string }> {
    const leaseId = await this.store.call(() => this.lease.grant());
    const { client } = this.store;
    const result = await this.store.call(() => client.if(key, 'Create', '==', 0)
      .then(client.put(key).value(value).lease(leaseId))
      .else(client.get(key))
      .commit());
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
  if (error instanceof EtcdInvalidAuthTokenError || AUTH_SETUP_ERRORS.some((text) => message.includes(text))) return new EtcdFailure('auth', message, { cause: error });
  if (looksLikeTls(message)) return new EtcdFailure('tls', describeTls(message), { cause: error });
  return new EtcdFailure('unreachable', message, { cause: error });
}
