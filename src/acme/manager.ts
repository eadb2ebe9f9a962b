import { KEY_PATHS } from '../model/keyspace.js';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Logger } from '../log.js';
import type { Snapshot } from '../model/snapshot.js';
import type { DesiredState, Entries } from '../model/types.js';
import { Backoff } from '../util/backoff.js';
import { ChallengeAcks, waitServed } from './challenges.js';
import { challengeOf, WantedDomains } from './domains.js';
import { createElection, type Election } from './election.js';
import { Interrupted, withDeadline } from './interruption.js';
import type { AcmeManagerOptions, AcmeStatus } from './options.js';
import { runOrder, type OrderContext } from './order.js';
import { decide, DEFAULT_BACKOFF, nextStep, planPass } from './schedule.js';
import { AcmeStorage } from './storage.js';

export type { AcmeDomainStatus, AcmeManagerOptions, AcmeStatus } from './options.js';

/** Snapshots arriving within this window are handled as one. */
const OFFER_COALESCE_MS = 20;
const STOP_TIMEOUT_MS = 5000;

/**
 * Obtains and renews certificates from an ACME CA (Let's Encrypt) over HTTP-01 or DNS-01 (wildcards), one per domain,
 * and stores them in the etcd vault as `certs/acme-<domain>`, where every replica's certificate
 * pipeline picks them up. The challenge answer is written to `acme/challenges/<token>`, which
 * every replica's HAProxy serves, so the CA may ask any of them.
 *
 * This wires the parts: the domains wanted (domains.ts, from the controller's parsed routes), the
 * stored state (storage.ts), the schedule (schedule.ts), one attempt (order.ts, through the
 * issuer), the challenge confirmations (challenges.ts) and the election (election.ts): only the
 * leader talks to the CA, and every write it makes is fenced on still leading. Per-domain progress
 * lives in etcd at `acme/state/<domain>`, so a new leader resumes where the old one stopped.
 */
export class AcmeManager {
  private readonly logger: Logger;
  private readonly election: Election;
  private readonly acks: ChallengeAcks | undefined;
  private readonly storage: AcmeStorage;
  /** The domains wanted now (the controller's certificate warnings read them). */
  readonly wanted: WantedDomains;
  private readonly id: string;
  private readonly renewDays: number;
  private readonly now: () => Date;
  private readonly random: () => number;
  /** Reading the stored state again after becoming leader failed: the next try waits this. */
  private readonly refreshBackoff = new Backoff({ firstMs: 1000, maxMs: 10_000 });

  /** The keys under `acme/` in the newest snapshot (replicas, acks, challenges, state: a few per domain). */
  private acmeKeys: Entries = new Map();
  /** The last snapshot processed. */
  private processed: Snapshot | undefined;
  private leading = false;
  /** The stored state was read since this replica became leader. */
  private ready = false;
  /** Counts leadership changes: work of an earlier leadership stops. */
  private epoch = 0;
  private abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private offerTimer: NodeJS.Timeout | undefined;
  private pendingSnapshot: Snapshot | undefined;
  private readonly running = new Map<string, Promise<void>>();
  private account: Promise<{ pem: string; url?: string }> | undefined;
  private started = false;
  private stopped = false;

  constructor(private readonly options: AcmeManagerOptions) {
    this.logger = options.logger;
    this.id = options.id ?? `${os.hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.renewDays = options.renewDays ?? 30;
    this.now = options.now ?? (() => new Date());
    this.random = options.random ?? Math.random;
    this.wanted = new WantedDomains(options.envDomains ?? [], options.logger, options.dns !== undefined);
    const ttlSeconds = options.leaderTtlSeconds ?? 10;
    this.election = (options.election ?? createElection)({
      store: options.store,
      prefix: options.prefix,
      id: this.id,
      ttlSeconds,
      logger: options.logger,
      onChange: (leading) => this.onLeadership(leading),
    });
    this.storage = new AcmeStorage({
      store: options.store,
      prefix: options.prefix,
      logger: options.logger,
      now: this.now,
      ...(options.vaultKey !== undefined ? { vaultKey: options.vaultKey } : {}),
      fence: () => this.election.fence(),
    });
    this.acks =
      options.httpPort === undefined
        ? undefined
        : new ChallengeAcks({
            store: options.store,
            prefix: options.prefix,
            id: this.id,
            httpPort: options.httpPort,
            ttlSeconds,
            logger: options.logger,
          });
  }

  /** Starts campaigning for leadership; the leader orders what is due. */
  start(): void {
    if (this.started) return;
    this.started = true;
    const dns = this.options.dns?.publisher.describe;
    this.logger.info({ directory: this.options.directoryUrl, id: this.id, renewDays: this.renewDays, ...(dns ? { dns } : {}) }, 'ACME enabled');
    this.acks?.start();
    this.election.start();
  }

  /**
   * Stops: interrupts the attempts in progress (their challenge tokens are deleted while this
   * replica still leads), then resigns, so another replica takes over at once and resumes.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.offerTimer);
    this.abort.abort();
    // Interrupted attempts only have their challenge tokens to delete; bounded, should etcd not answer.
    await withDeadline(Promise.allSettled([...this.running.values()]), STOP_TIMEOUT_MS);
    await withDeadline(this.election.stop(), STOP_TIMEOUT_MS);
    await withDeadline(this.acks?.stop() ?? Promise.resolve(), STOP_TIMEOUT_MS);
  }

  /**
   * Takes every etcd snapshot but works on the newest only, a moment later, and reads only its
   * own keys (`acme/...`, `certs/acme-...`), again only when some of them changed.
   */
  offer(snapshot: Snapshot): void {
    this.pendingSnapshot = snapshot;
    this.offerTimer ??= setTimeout(() => {
      this.offerTimer = undefined;
      const latest = this.pendingSnapshot;
      this.pendingSnapshot = undefined;
      if (latest && !this.stopped) this.process(latest);
    }, OFFER_COALESCE_MS);
  }

  /**
   * The parsed routes (the controller's, for every snapshot it applies): the domains wanted are
   * the virtual hosts of HTTP services with `acme` true.
   */
  offerServices(routes: DesiredState): void {
    if (this.wanted.offerRoutes(routes)) this.wake();
  }

  /** KONTENA_LB_ACME_DOMAINS. */
  setEnvDomains(domains: readonly string[]): void {
    if (this.wanted.setEnvDomains(domains)) this.wake();
  }

  status(): AcmeStatus {
    const now = this.now();
    const { states, certs } = this.storage;
    return {
      leader: this.leading,
      skipped: this.wanted.skipped,
      domains: this.wanted.domains.map((domain) => {
        const state = states.get(domain);
        const cert = certs.get(domain);
        const running = this.running.has(domain);
        return {
          domain,
          state,
          certificate: cert && { notAfter: cert.notAfter.toISOString(), fingerprint: cert.fingerprint },
          challenge: challengeOf(domain, this.options.challenge),
          running,
          next: nextStep(decide(state, cert, now, this.renewDays, this.options.minRenewIntervalMs), running),
        };
      }),
    };
  }

  private process(snapshot: Snapshot): void {
    const changed = snapshot.changedSince(this.processed);
    this.processed = snapshot;
    this.election.follow(snapshot);
    if (!changed || [...changed].some((group) => group.startsWith(KEY_PATHS.acme))) {
      this.acmeKeys = snapshot.under(KEY_PATHS.acme);
      this.acks?.offer(this.acmeKeys);
    }
    this.storage.offer(snapshot);
  }

  // ---- leadership and scheduling --------------------------------------------------------------

  private onLeadership(leading: boolean): void {
    this.leading = leading;
    this.epoch++;
    this.abort.abort();
    this.abort = new AbortController();
    this.account = undefined;
    this.ready = false;
    clearTimeout(this.timer);
    if (!leading || this.stopped) return;
    const epoch = this.epoch;
    void this.storage.refresh().then(
      () => {
        if (epoch !== this.epoch) return;
        this.refreshBackoff.reset();
        this.ready = true;
        this.wake();
      },
      (error: Error) => {
        if (epoch !== this.epoch) return;
        const retryInMs = this.refreshBackoff.next();
        this.logger.warn({ err: error.message, retryInMs }, 'ACME: cannot read the stored state; retrying');
        this.timer = setTimeout(() => this.onLeadership(this.leading), retryInMs);
      },
    );
  }

  private wake(): void {
    if (!this.leading || !this.ready || this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.pass(), 0);
  }

  /** Starts what is due (up to `concurrency` at once) and sets the timer for the next look. */
  private pass(): void {
    if (!this.leading || !this.ready || this.stopped) return;
    const { start, nextAt } = planPass({
      domains: this.wanted.domains,
      states: this.storage.states,
      certs: this.storage.certs,
      running: new Set(this.running.keys()),
      concurrency: Math.max(1, this.options.concurrency ?? 2),
      now: this.now(),
      renewDays: this.renewDays,
      ...(this.options.minRenewIntervalMs !== undefined ? { minRenewIntervalMs: this.options.minRenewIntervalMs } : {}),
      checkIntervalMs: this.options.checkIntervalMs ?? 3600_000,
      random: this.random,
    });
    for (const { domain, reason } of start) {
      const attempt = runOrder(this.orderContext(domain, this.epoch), domain, reason, this.logger.child({ domain })).finally(() => {
        this.running.delete(domain);
        this.wake();
      });
      this.running.set(domain, attempt);
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.pass(), Math.max(0, Math.min(nextAt - Date.now(), 2 ** 31 - 1)));
  }

  /** What an attempt of this leadership (`epoch`) may use; it ends when that leadership does. */
  private orderContext(domain: string, epoch: number): OrderContext {
    const { options } = this;
    const signal = this.abort.signal;
    return {
      id: this.id,
      email: options.email,
      directoryUrl: options.directoryUrl,
      ...(options.directoryCa !== undefined ? { directoryCa: options.directoryCa } : {}),
      ...(options.poll !== undefined ? { poll: options.poll } : {}),
      ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
      ...(options.keyType !== undefined ? { keyType: options.keyType } : {}),
      ...(options.vaultKey !== undefined ? { vaultKey: options.vaultKey } : {}),
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      challenge: challengeOf(domain, options.challenge),
      ...(options.dns !== undefined ? { dns: options.dns } : {}),
      now: this.now,
      random: this.random,
      storage: this.storage,
      account: (log) => this.ensureAccount(log),
      waitServed: (token, log, tokenSignal) =>
        waitServed(token, {
          entries: () => this.acmeKeys,
          confirming: this.acks !== undefined,
          timeoutMs: options.servedTimeoutMs ?? 10_000,
          log,
          signal: tokenSignal,
        }),
      signal,
      guard: () => {
        if (this.stopped || signal.aborted || epoch !== this.epoch) throw new Interrupted('stopping or no longer the leader');
        if (!this.election.isLeader()) throw new Interrupted('the leader lease was not renewed in time');
        if (!this.wanted.domains.includes(domain)) throw new Interrupted('the domain is no longer wanted');
      },
    };
  }

  /** The account key from etcd, created (once, by the leader) when there is none. */
  private ensureAccount(log: Logger): Promise<{ pem: string; url?: string }> {
    if (!this.account) {
      const epoch = this.epoch;
      this.account = this.storage.loadAccount(log);
      this.account.catch(() => {
        if (epoch === this.epoch) this.account = undefined;
      });
    }
    return this.account;
  }
}
