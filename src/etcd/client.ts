import { Etcd3 } from 'etcd3';
import { decideApi, hasV3Api, type ApiDecision } from './choose-api.js';
import type { EtcdConnection } from './connection.js';
import { EtcdFailure } from './errors.js';
import type { EtcdApi, KvStore } from './store.js';
import { V2Store } from './v2-store.js';
import { v3FaultHandling } from './v3-fault-handling.js';
import { V3Store } from './v3-store.js';

/**
 * The one way edgelb reaches etcd, for every command: it holds the connection settings, makes
 * the v3 or v2 store on first use, and settles which API the load balancer's keys live in
 * (ETCD_API, or for `auto` what the server and the prefix show).
 */
export class EtcdClient {
  private v3: V3Store | undefined;
  private v2: V2Store | undefined;
  private chosen: { readonly api: EtcdApi; readonly reason: string } | undefined;
  private readonly waiting: ((store: KvStore) => void)[] = [];
  private closed = false;

  constructor(readonly connection: EtcdConnection) {
    if (connection.api !== 'auto') this.chosen = { api: connection.api, reason: `ETCD_API=${connection.api}` };
  }

  /** The API in use, once known. */
  get api(): EtcdApi | undefined {
    return this.chosen?.api;
  }

  get reason(): string | undefined {
    return this.chosen?.reason;
  }

  /** The store of `api` (made on first use; both may exist while ETCD_API=auto has not decided). */
  store(api: EtcdApi): KvStore {
    if (this.closed) throw new EtcdFailure('other', 'the etcd client is closed');
    if (api === 'v3') return (this.v3 ??= new V3Store(this.connection, createEtcd3(this.connection)));
    return (this.v2 ??= new V2Store(this.connection));
  }

  /** The store in use; throws 'api-undecided' while ETCD_API=auto watches both. */
  current(): KvStore {
    if (!this.chosen)
      throw new EtcdFailure(
        'api-undecided',
        'ETCD_API=auto: the prefix is empty in both the v2 and the v3 keyspace, so it is not known yet which one the platform writes to; set ETCD_API=v2 or ETCD_API=v3',
      );
    return this.store(this.chosen.api);
  }

  /** Resolves with the store in use once the API is known (at once unless ETCD_API=auto is still watching both). */
  whenDecided(): Promise<KvStore> {
    if (this.chosen) return Promise.resolve(this.store(this.chosen.api));
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /**
   * Looks at the server and the prefix (ETCD_API=auto) and settles the API when it can. Throws
   * an EtcdFailure when etcd cannot be asked; the caller retries.
   */
  async choose(prefix: string): Promise<ApiDecision> {
    if (this.chosen) return this.chosen;
    const v2 = this.store('v2') as V2Store;
    const serverVersion = await v2.http.version();
    const v3Api = hasV3Api(serverVersion);
    // Both keyspaces must answer: picking the one that does when the other refuses edgelb's
    // credentials could serve an empty keyspace instead of saying what is wrong.
    const [v2State, v3Keys] = await Promise.all([
      v2.exists(prefix).then((exists) => (exists === undefined ? ('off' as const) : exists ? ('present' as const) : ('absent' as const)), probing('v2')),
      v3Api ? (this.store('v3') as V3Store).hasKeys(prefix).catch(probing('v3')) : Promise.resolve(undefined),
    ]);
    const decision = decideApi({ serverVersion, v2: v2State, v3Keys });
    if (decision.api) this.decide(decision.api, decision.reason);
    return decision;
  }

  /** Settles the API (ETCD_API=auto, when the first write shows it); the other store is closed. */
  decide(api: EtcdApi, reason: string): void {
    if (this.chosen) return;
    this.chosen = { api, reason };
    if (api === 'v3') {
      this.v2?.close();
      this.v2 = undefined;
    } else {
      this.v3?.close();
      this.v3 = undefined;
    }
    const store = this.store(api);
    for (const resolve of this.waiting.splice(0)) resolve(store);
  }

  close(): void {
    this.closed = true;
    this.v3?.close();
    this.v2?.close();
  }
}

/**
 * The one place an etcd3 (v3 API) client is made, for every part of edgelb that needs one: the
 * connection settings (TLS, credentials) and the timings tuned for one long watch across members.
 */
function createEtcd3(connection: EtcdConnection): Etcd3 {
  return new Etcd3({
    // No dialTimeout: etcd3 1.1.2 accepts the option but never reads it.
    hosts: [...connection.endpoints],
    ...(connection.tls
      ? {
          credentials: {
            // gRPC needs a root; without ETCD_CA_FILE the system's trust store is used (an empty buffer does not work).
            rootCertificate: connection.tls.ca === undefined ? (undefined as unknown as Buffer) : Buffer.from(connection.tls.ca),
            ...(connection.tls.key !== undefined ? { privateKey: Buffer.from(connection.tls.key) } : {}),
            ...(connection.tls.cert !== undefined ? { certChain: Buffer.from(connection.tls.cert) } : {}),
          },
        }
      : {}),
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

/** Names the keyspace ETCD_API=auto was looking at when etcd refused, and the way out. */
function probing(api: EtcdApi): (error: unknown) => never {
  return (error) => {
    const failure = error instanceof EtcdFailure ? error : new EtcdFailure('other', (error as Error).message, { cause: error });
    throw new EtcdFailure(
      failure.code,
      `ETCD_API=auto, looking at the ${api} keyspace: ${failure.message} (set ETCD_API to the API the platform writes with to use only that one)`,
      { cause: failure },
    );
  };
}
