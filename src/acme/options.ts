import type { KvStore } from '../etcd/store.js';
import type { Logger } from '../log.js';
import type { SkippedDomain } from './domains.js';
import type { DnsSolver } from './dns-challenge.js';
import type { ChallengeType } from './domains.js';
import type { Election, ElectionOptions } from './election.js';
import type { AcmeConnectionOptions } from './issuer.js';
import type { OrderBackoff } from './schedule.js';
import type { AcmeDomainState } from './state.js';

export interface AcmeManagerOptions {
  /** The etcd keyspace the load balancer's keys live in (v3 or v2). */
  readonly store: KvStore;
  /** The load balancer's etcd path, without a trailing slash. */
  readonly prefix: string;
  readonly logger: Logger;
  /** Account contact; setting it agrees to the CA's terms of service. */
  readonly email: string;
  readonly directoryUrl: string;
  /** PEM of extra CA certificates to trust for the directory (pebble, a private ACME CA). */
  readonly directoryCa?: string;
  /** Renew when the certificate has fewer days left than this (default 30). */
  readonly renewDays?: number;
  /** KONTENA_LB_VAULT_KEY: encrypts the account key and the certificates in etcd. */
  readonly vaultKey?: string;
  /** KONTENA_LB_ACME_DOMAINS, already split. */
  readonly envDomains?: readonly string[];
  /** Lease TTL of the leader election (default 10 s): a dead leader is replaced within it. */
  readonly leaderTtlSeconds?: number;
  /** Per-domain retry delays after failures (default 1 min doubling up to 6 h, ±10%). */
  readonly backoff?: OrderBackoff;
  /** How often the leader looks at every domain again (default 1 h, ±10%). */
  readonly checkIntervalMs?: number;
  /**
   * This replica's HTTP port. With it, the replica announces itself in etcd and confirms each
   * challenge token once its own HAProxy serves it (see ChallengeAcks); the leader asks the CA to
   * validate only when every announced replica has confirmed.
   */
  readonly httpPort?: number;
  /** How long the leader waits for those confirmations (default 10 s); the CA is asked anyway afterwards. */
  readonly servedTimeoutMs?: number;
  /** Domains ordered at the same time (default 2). */
  readonly concurrency?: number;
  /** Challenge and order status polling (default 1 s doubling to 10 s, 12 polls). */
  readonly poll?: AcmeConnectionOptions['poll'];
  /** Shortest time between two renewals of an unexpired certificate (default 24 h). */
  readonly minRenewIntervalMs?: number;
  /** Per HTTP request to the CA (default 30 s). */
  readonly requestTimeoutMs?: number;
  /** DNS-01: the TXT record publisher and the propagation wait; without it wildcards get no certificate. */
  readonly dns?: DnsSolver;
  /** KONTENA_LB_ACME_CHALLENGE: for exact names (default http-01); wildcards are always dns-01. */
  readonly challenge?: ChallengeType;
  /** Certificate key type (default EC P-256). */
  readonly keyType?: 'ec' | 'rsa';
  /** This replica's id in the election (default host name, pid and a random suffix). */
  readonly id?: string;
  readonly now?: () => Date;
  readonly random?: () => number;
  /** Makes the election (default createElection: the store's API decides); unit tests give a fake. */
  readonly election?: (options: ElectionOptions) => Election;
}

/** One domain in `status()`: its stored state, the certificate held for it, what happens next. */
export interface AcmeDomainStatus {
  readonly domain: string;
  readonly state: AcmeDomainState | undefined;
  readonly certificate: { readonly notAfter: string; readonly fingerprint: string } | undefined;
  /** How the CA validates it. */
  readonly challenge: ChallengeType;
  /** An order is being worked on by this replica right now. */
  readonly running: boolean;
  /** Why it is (not) due, from this replica's view. */
  readonly next: string;
}

export interface AcmeStatus {
  readonly leader: boolean;
  readonly domains: readonly AcmeDomainStatus[];
  readonly skipped: readonly SkippedDomain[];
}
