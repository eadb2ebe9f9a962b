import type { KvFence, KvStore } from '../etcd/store.js';
import { V3Store } from '../etcd/v3-store.js';
import type { Logger } from '../log.js';
import type { Snapshot } from '../model/snapshot.js';
import { CampaignElection } from './campaign-election.js';
import { ELECTION_NAME, ELECTION_NAMESPACE, LEADER_KEY } from './keys.js';
import { LeaderElection } from './lease-election.js';

/**
 * Who orders certificates: exactly one replica per etcd path. What the ACME manager needs of an
 * election, the same over both APIs.
 */
export interface Election {
  /** Starts campaigning. */
  start(): void;
  /** True while this replica leads and its lease was renewed recently enough to be sure of it. */
  isLeader(): boolean;
  /** The condition every leader-only write is made on (KvStore.fencedWrite); undefined: not leading. */
  fence(): KvFence | undefined;
  /** The newest snapshot of the prefix: the leader's key may be gone or taken over. */
  follow(snapshot: Pick<Snapshot, 'get' | 'revision'>): void;
  /** Resigns (another replica takes over at once) and stops campaigning. */
  stop(): Promise<void>;
}

export interface ElectionOptions {
  readonly store: KvStore;
  /** The load balancer's etcd path, without a trailing slash. */
  readonly prefix: string;
  /** Unique per replica and per run. */
  readonly id: string;
  /** Lease TTL: a leader that dies is replaced within about this long. */
  readonly ttlSeconds: number;
  readonly logger: Logger;
  readonly onChange: (leading: boolean) => void;
}

/** The election for the store's API: etcd's own on v3, a TTL key on v2 (which has no elections). */
export function createElection(options: ElectionOptions): Election {
  const { store, prefix, ...rest } = options;
  if (store instanceof V3Store) return new CampaignElection({ ...rest, client: store.client, prefix });
  return new LeaderElection({ ...rest, store, key: `${prefix}/${LEADER_KEY}` });
}

/** The id of the replica that orders certificates now (for `edgelb cert list`); undefined when none does. */
export async function readLeader(store: KvStore, prefix: string): Promise<string | undefined> {
  if (!(store instanceof V3Store)) return store.get(`${prefix}/${LEADER_KEY}`);
  const election = store.client.namespace(`${prefix}/${ELECTION_NAMESPACE}`).election(ELECTION_NAME);
  return store.call(() => election.leader());
}
