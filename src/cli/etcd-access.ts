import { EtcdClient } from '../etcd/client.js';
import type { EtcdConnection } from '../etcd/connection.js';
import { EtcdFailure, FAILURE_HINTS, firstLine, isConfigurationFailure } from '../etcd/errors.js';
import type { KvStore } from '../etcd/store.js';

export interface StoreAccess {
  /** The load balancer's etcd path (decides the API under ETCD_API=auto). */
  readonly prefix: string;
  /** A write needs the API settled; a read of an empty prefix does not. */
  readonly forWriting: boolean;
  readonly timeoutMs: number;
  /** Prints one line and exits. */
  readonly fail: (message: string) => never;
  /** What to suggest after the cause (e.g. "or use --from-file"). */
  readonly hint?: string;
  /** How the failure line starts (default: "cannot read from etcd"). */
  readonly failure?: string;
}

/**
 * Runs `work` against the keyspace the load balancer's keys live in (the same client and API
 * choice as `edgelb run`), within a deadline. Any failure to reach etcd becomes one line naming
 * the endpoints and the cause; the password and key material never appear in it.
 */
export async function withStore<T>(connection: EtcdConnection, access: StoreAccess, work: (store: KvStore) => Promise<T>): Promise<T> {
  const endpoints = connection.endpoints.join(',');
  const client = new EtcdClient(connection);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new EtcdFailure('unreachable', `no answer within ${access.timeoutMs / 1000} s`)), access.timeoutMs);
  });
  try {
    return await Promise.race([
      (async () => {
        const decision = await client.choose(access.prefix);
        // Undecided means the prefix is empty in both keyspaces: a read finds nothing in either.
        const store = decision.api ? client.store(decision.api) : access.forWriting ? client.current() : client.store('v3');
        return work(store);
      })(),
      deadline,
    ]);
  } catch (error) {
    const failure = error instanceof EtcdFailure ? error : undefined;
    const cause = failure && isConfigurationFailure(failure) ? `${FAILURE_HINTS[failure.code]}: ${failure.message}` : firstLine((error as Error).message);
    if (failure?.code === 'api-undecided') access.fail(failure.message);
    access.fail(`${access.failure ?? 'cannot read from etcd'} at ${endpoints}: ${cause}${access.hint ? ` (${access.hint})` : ''}`);
  } finally {
    clearTimeout(timer);
    client.close();
  }
}
