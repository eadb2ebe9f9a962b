import type { EtcdFailure } from './errors.js';

/**
 * What edgelb needs from etcd, the same over the v3 API (gRPC) and the v2 API (HTTP keys):
 * list a prefix at a revision, watch it from the next one, read and write single keys, keys
 * that live only as long as their owner (a lease), and writes fenced on a key's value.
 * Keys given to a store are full etcd keys; listings and changes give them relative to the prefix.
 */
export type EtcdApi = 'v3' | 'v2';

/** Every key under a prefix (relative to it) and the revision the read saw. */
export interface KvListing {
  readonly entries: Map<string, string>;
  /** v3: the store revision; v2: the etcd index. Decimal, comparable within one API. */
  readonly revision: string;
}

/** One change under a watched prefix. `dir`: everything under `key/` went (a v2 recursive delete). */
export type KvChange =
  | { readonly type: 'put'; readonly key: string; readonly value: string }
  | { readonly type: 'delete'; readonly key: string; readonly dir?: boolean };

export interface KvWatchHandlers {
  /** Changes in order, and the revision they bring the reader to. */
  readonly onChanges: (changes: readonly KvChange[], revision: string) => void;
  /**
   * The watch stopped and will not resume by itself: the history it needs is gone
   * ('history-lost'), or it could not reconnect. The caller reads everything again.
   */
  readonly onLost: (failure: EtcdFailure) => void;
  /** The connection under the watch dropped and is being re-established (resumes on its own). */
  readonly onInterrupted?: (failure: EtcdFailure) => void;
  /** The watch is (again) established. */
  readonly onConnected?: () => void;
}

export interface KvWatch {
  cancel(): Promise<void>;
}

/** A write inside a fenced batch. `create` fails the batch when the key exists. */
export type KvOp =
  | { readonly type: 'put'; readonly key: string; readonly value: string }
  | { readonly type: 'create'; readonly key: string; readonly value: string }
  | { readonly type: 'delete'; readonly key: string }
  /** Every key under `key` (which ends in '/'). */
  | { readonly type: 'delete-prefix'; readonly key: string };

/**
 * What a leader's writes are conditional on (its fencing token): `key` still holds `value` (the
 * v2 leader key), or `key` is still attached to lease `lease` (a v3 campaign key: the campaign's
 * lease is the token, as in etcd's own concurrency package).
 */
export type KvFence = { readonly key: string; readonly value: string } | { readonly key: string; readonly lease: string };

export interface FencedResult {
  readonly succeeded: boolean;
  readonly revision: string;
}

/**
 * Keys that exist only while their owner keeps renewing them. v3: one etcd lease, kept alive by
 * the client. v2 has no leases: each key gets the TTL and is refreshed (without waking
 * watchers) every TTL/3, checked against its value so another owner's key is never extended.
 */
export interface KvLease {
  /** Puts `key` = `value` for as long as the lease lives. */
  put(key: string, value: string): Promise<void>;
  /** Creates `key` = `value` on this lease unless the key exists; answers who holds it now, as of `revision`. */
  claim(key: string, value: string): Promise<{ readonly created: boolean; readonly holder: string | undefined; readonly revision: string }>;
  /** Deletes every key of the lease and stops renewing. */
  revoke(): Promise<void>;
  /** Stops renewing without deleting: the keys expire within the TTL. */
  release(): void;
  /** The lease ended without revoke(): its keys are gone or about to be. */
  onLost(listener: (failure: EtcdFailure) => void): void;
  /** Every successful renewal. */
  onRenewed(listener: () => void): void;
}

export interface KvStore {
  readonly api: EtcdApi;
  /** The members this store talks to, for logs and /status (never credentials). */
  readonly endpoints: readonly string[];
  /** Every key under `prefix` + '/'. */
  list(prefix: string): Promise<KvListing>;
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * True when a watch that dropped always comes back by itself, however long it stays down (v3:
   * the etcd3 library's watcher). Otherwise a watch down for long is replaced by a fresh read.
   */
  readonly watchResumes?: boolean;
  /** Changes under `prefix` + '/' after `revision`, resuming by itself over dropped connections. */
  watch(prefix: string, revision: string, handlers: KvWatchHandlers): Promise<KvWatch>;
  lease(ttlSeconds: number): KvLease;
  /**
   * Applies `ops` only while the fence holds (a leader's writes; v2 has no leases, so only a
   * value fence). v3 checks and
   * writes in one transaction. v2 has no multi-key transactions: it checks the fence with a
   * quorum read, then writes in order, each create with `prevExist=false` and a delete of the
   * fence key itself with `prevValue`; a replica that loses leadership between the check and a
   * write can still complete that batch (leaders step down before their key can expire, so this
   * needs a stalled process).
   */
  fencedWrite(fence: KvFence, ops: readonly KvOp[]): Promise<FencedResult>;
  close(): void;
}
