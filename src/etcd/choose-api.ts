import type { EtcdApi } from './store.js';

/** What edgelb found on the server before choosing an API for ETCD_API=auto. */
export interface ApiProbe {
  /** `etcdserver` of GET /version, e.g. `2.3.7` or `3.4.23`. */
  readonly serverVersion: string;
  /** The prefix in the v2 keyspace: `off` when the server has no v2 API. */
  readonly v2: 'off' | 'absent' | 'present';
  /** Whether the prefix has keys in the v3 keyspace; undefined when the server has no v3 API. */
  readonly v3Keys: boolean | undefined;
}

export type ApiDecision =
  | { readonly api: EtcdApi; readonly reason: string; readonly warning?: string }
  /** Nothing under the prefix in either API yet: watch both, the first write decides. */
  | { readonly api: undefined; readonly reason: string };

/** etcd 3.0 brought the v3 API; etcd 2.x has only v2. */
export function hasV3Api(serverVersion: string): boolean {
  const major = Number(/^(\d+)\./.exec(serverVersion)?.[1] ?? NaN);
  return Number.isNaN(major) || major >= 3;
}

/**
 * ETCD_API=auto: the API the platform writes the service links with. A Kontena grid's agents
 * use v2 (its etcd 2.3 has nothing else); newer platforms use v3. The two keyspaces are
 * separate, so the prefix's keys say which one is in use; when both are empty, both are
 * watched and the first write decides.
 */
export function decideApi({ serverVersion, v2, v3Keys }: ApiProbe): ApiDecision {
  if (!hasV3Api(serverVersion) || v3Keys === undefined) return { api: 'v2', reason: `etcd ${serverVersion} has no v3 API` };
  if (v2 === 'off') return { api: 'v3', reason: `etcd ${serverVersion} has its v2 API switched off` };
  if (v3Keys) {
    return {
      api: 'v3',
      reason: 'the prefix has keys in the v3 keyspace',
      ...(v2 === 'present'
        ? { warning: 'the prefix also exists in the v2 keyspace, which edgelb does not read (set ETCD_API=v2 to read that one instead)' }
        : {}),
    };
  }
  if (v2 === 'present') return { api: 'v2', reason: 'the prefix exists only in the v2 keyspace' };
  return { api: undefined, reason: 'the prefix is empty in both keyspaces: watching both until the platform writes to one' };
}
