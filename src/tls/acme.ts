import { randomBytes, X509Certificate } from 'node:crypto';
import os from 'node:os';
import acme from 'acme-client';
import type { KvOp, KvStore } from '../etcd/store.js';
import type { Logger } from '../log.js';
import { compare } from '../model/parse.js';
import { groupOf, type Snapshot } from '../model/snapshot.js';
import { changedServices, findService } from '../model/state-changes.js';
import type { DesiredState, Entries, HttpService } from '../model/types.js';
import { ACK_DIR, ackStatus, ChallengeAcks } from './acme-acks.js';
import { connectAcme, type AcmeConnection, type AcmeConnectionOptions } from './acme-client.js';
import { acmeDomains, type SkippedDomain } from './acme-domains.js';
import {
  ACCOUNT_KEY, CERT_PREFIX, CHALLENGE_DIR, DEFAULT_BACKOFF, LEADER_KEY, STATE_DIR,
  decide, failedState, issuedState, jittered, parseState, pendingState, serializeState,
  type AcmeDomainState, type AttemptFailure, type Backoff, type HeldCert,
} from './acme-state.js';
import { BundleError, parseBundle } from './bundle.js';
import { LeaderElection } from './leader.js';
import { decryptBundle, encryptBundle, VaultError } from './vault.js';

export { LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING } from './acme-state.js';

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
  readonly backoff?: Backoff;
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
  /** Certificate key type (default EC P-256). */
  readonly keyType?: 'ec' | 'rsa';
  /** This replica's id in the election (default host name, pid and a random suffix). */
  readonly id?: string;
  readonly now?: () => Date;
  readonly random?: () => number;
}

/** One domain in `status()`: its stored state, the certificate held for it, what happens next. */
export interface AcmeDomainStatus {
  readonly domain: string;
  readonly state: AcmeDomainState | undefined;
  readonly certificate: { readonly notAfter: string; readonly fingerprint: string } | undefined;
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

/** One operation of a fenced write; `relative` and `value` (undefined for a delete) for the in-memory state. */
interface WriteOp {
  readonly op: KvOp;
  readonly relative: string;
  readonly value: string | undefined;
}

/** Leadership ended or the manager stops: the attempt ends without counting as a failure. */
class Interrupted extends Error {}

/**
 * Obtains and renews certificates from an ACME CA (Let's Encrypt) over HTTP-01, one per domain,
 * and stores them in the etcd vault as `certs/acme-<domain>`, where every replica's certificate
 * pipeline picks them up. The challenge answer is written to `acme/challenges/<token>`, which
 * every replica's HAProxy serves, so the CA may ask any of them.
 *
 * Replicas on one etcd path elect a leader (an etcd lease, see LeaderElection); only the leader
 * talks to the CA, and every write it makes is fenced on still being the leader. Per-domain
 * progress (pending order, backoff, last error, validity) lives in etcd at
 * `acme/state/<domain>`, so a new leader resumes where the old one stopped.
 */
/** Snapshots arriving within this window are handled as one. */
const OFFER_COALESCE_MS = 20;

export class AcmeManager {
  private readonly logger: Logger;
  private readonly leader: LeaderElection;
  private readonly acks: ChallengeAcks | undefined;
  private readonly id: string;
  private readonly renewDays: number;
  private readonly backoff: Backoff;
  private readonly checkIntervalMs: number;
  private readonly concurrency: number;
  private readonly now: () => Date;
  private readonly random: () => number;

  private envDomains: readonly string[];
  /** The keys under `acme/` in the newest snapshot (replicas, acks, challenges, state: a few per domain). */
  private acmeKeys: Entries = new Map();
  /** The last snapshot processed, and the last one the stored states and certificates were read from. */
  private processed: Snapshot | undefined;
  private storedFrom: Snapshot | undefined;
  /** The routes last offered, and those of its HTTP services that ask for certificates (acme: true), by name. */
  private routes: DesiredState | undefined;
  private readonly acmeServices = new Map<string, HttpService>();
  private desired: readonly string[] = [];
  private skipped: readonly SkippedDomain[] = [];
  private readonly states = new Map<string, AcmeDomainState>();
  private readonly certs = new Map<string, HeldCert>();
  private readonly certCache = new Map<string, { value: string; held: HeldCert | string }>();
  private readonly reportedBadCerts = new Set<string>();
  /** Snapshots older than our last write would undo it in memory; they are skipped. */
  private lastWriteRevision = 0n;

  private leading = false;
  private ready = false;
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
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.checkIntervalMs = options.checkIntervalMs ?? 3600_000;
    this.concurrency = Math.max(1, options.concurrency ?? 2);
    this.now = options.now ?? (() => new Date());
    this.random = options.random ?? Math.random;
    this.envDomains = options.envDomains ?? [];
    this.leader = new LeaderElection({
      store: options.store,
      key: this.key(LEADER_KEY),
      id: this.id,
      ttlSeconds: options.leaderTtlSeconds ?? 10,
      logger: options.logger,
      onChange: (leading) => this.onLeadership(leading),
    });
    this.acks = options.httpPort === undefined ? undefined : new ChallengeAcks({
      store: options.store,
      prefix: options.prefix,
      id: this.id,
      httpPort: options.httpPort,
      ttlSeconds: options.leaderTtlSeconds ?? 10,
      logger: options.logger,
    });
  }

  /** Starts campaigning for leadership; the leader orders what is due. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.logger.info({ directory: this.options.directoryUrl, id: this.id, renewDays: this.renewDays }, 'ACME enabled');
    this.acks?.start();
    this.leader.start();
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
    await withDeadline(this.leader.stop(), STOP_TIMEOUT_MS);
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
   * the virtual hosts of HTTP services with `acme` true. Only the services that changed since
   * the last routes are looked at (changedServices).
   */
  offerServices(routes: DesiredState): void {
    const first = this.routes === undefined;
    let changed = false;
    for (const key of changedServices(this.routes, routes)) {
      if (!key.startsWith('http:')) continue;
      const name = key.slice('http:'.length);
      const service = findService(routes, key) as HttpService | undefined;
      if (service?.acme) this.acmeServices.set(name, service);
      if (service?.acme || this.acmeServices.delete(name)) changed = true;
    }
    this.routes = routes;
    if (changed || first) this.updateDesired();
  }

  private process(snapshot: Snapshot): void {
    const changed = snapshot.changedSince(this.processed);
    this.processed = snapshot;
    this.leader.observe(snapshot.get(LEADER_KEY), snapshot.revision);
    if (!changed || [...changed].some((group) => group.startsWith('acme/'))) {
      this.acmeKeys = snapshot.under('acme/');
      this.acks?.offer(this.acmeKeys);
    }
    if (BigInt(snapshot.revision) < this.lastWriteRevision) return;
    const stored = snapshot.changedSince(this.storedFrom);
    if (stored && !stored.has(groupOf(STATE_DIR)) && !stored.has(groupOf(CERT_PREFIX))) return;
    this.storedFrom = snapshot;
    this.readStored(new Map([...snapshot.under(STATE_DIR), ...snapshot.under(CERT_PREFIX)]));
  }

  /** KONTENA_LB_ACME_DOMAINS. */
  setEnvDomains(domains: readonly string[]): void {
    this.envDomains = [...domains];
    this.updateDesired();
  }

  status(): AcmeStatus {
    const now = this.now();
    return {
      leader: this.leading,
      skipped: this.skipped,
      domains: this.desired.map((domain) => {
        const state = this.states.get(domain);
        const cert = this.certs.get(domain);
        const running = this.running.has(domain);
        const decision = decide(state, cert, now, this.renewDays, this.options.minRenewIntervalMs);
        const next = running ? 'ordering now'
          : decision.due ? `due: ${decision.reason}`
            : `${decision.reason}; next look at ${decision.at.toISOString()}`;
        return {
          domain,
          state,
          certificate: cert && { notAfter: cert.notAfter.toISOString(), fingerprint: cert.fingerprint },
          running,
          next,
        };
      }),
    };
  }

  // ---- inputs -------------------------------------------------------------------------------

  private updateDesired(): void {
    const http = [...this.acmeServices.values()].sort((a, b) => compare(a.name, b.name));
    const { domains, skipped } = acmeDomains({ http, tcp: [] }, this.envDomains);
    const skippedKey = (list: readonly SkippedDomain[]) => list.map((s) => `${s.source}|${s.domain}|${s.reason}`).join('\n');
    if (skippedKey(skipped) !== skippedKey(this.skipped)) {
      const before = new Set(this.skipped.map((s) => `${s.source}|${s.domain}`));
      for (const s of skipped) {
        if (!before.has(`${s.source}|${s.domain}`)) this.logger.info({ domain: s.domain, source: s.source, reason: s.reason }, 'ACME: no certificate will be ordered for this name');
      }
    }
    this.skipped = skipped;
    if (domains.join(',') === this.desired.join(',')) return;
    const added = domains.filter((d) => !this.desired.includes(d));
    const removed = this.desired.filter((d) => !domains.includes(d));
    this.desired = domains;
    this.logger.info({ domains, added, removed }, 'ACME domains changed');
    if (removed.length > 0) this.logger.info({ removed }, 'ACME: no longer ordering for these names; their certificates stay in the vault until removed');
    this.wake();
  }

  /** States and certificates from the entries under STATE_DIR and CERT_PREFIX (of a snapshot or a fresh read). */
  private readStored(entries: Entries): void {
    this.states.clear();
    this.certs.clear();
    for (const key of this.certCache.keys()) if (!entries.has(key)) this.certCache.delete(key);
    for (const [key, value] of entries) {
      if (key.startsWith(STATE_DIR)) {
        const domain = key.slice(STATE_DIR.length);
        const state = parseState(value, domain);
        if (state) this.states.set(domain, state);
      } else if (key.startsWith(CERT_PREFIX)) {
        const domain = key.slice(CERT_PREFIX.length);
        const held = this.heldCert(key, domain, value);
        if (held) this.certs.set(domain, held);
      }
    }
  }

  private heldCert(key: string, domain: string, value: string): HeldCert | undefined {
    let cached = this.certCache.get(key);
    if (!cached || cached.value !== value) {
      let held: HeldCert | string;
      try {
        const bundle = parseBundle(decryptBundle(value, this.options.vaultKey), { kind: 'acme', ref: key }, this.now());
        held = bundle.names.includes(domain)
          ? { notAfter: bundle.notAfter, fingerprint: bundle.fingerprint }
          : `it does not cover ${domain} (it names ${bundle.names.join(', ')})`;
      } catch (error) {
        if (!(error instanceof BundleError) && !(error instanceof VaultError)) throw error;
        held = error.message;
      }
      cached = { value, held };
      this.certCache.set(key, cached);
    }
    if (typeof cached.held === 'string') {
      if (!this.reportedBadCerts.has(`${key}\u0000${cached.held}`)) {
        this.reportedBadCerts.add(`${key}\u0000${cached.held}`);
        this.logger.warn({ domain, key, reason: cached.held }, 'ACME: the stored certificate cannot be used; a new one will be ordered');
      }
      return undefined;
    }
    return cached.held;
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
    void this.refresh().then(
      () => {
        if (epoch !== this.epoch) return;
        this.ready = true;
        this.wake();
      },
      (error: Error) => {
        if (epoch !== this.epoch) return;
        this.logger.warn({ err: error.message }, 'ACME: cannot read the stored state; retrying');
        this.timer = setTimeout(() => this.onLeadership(this.leading), 1000);
      },
    );
  }

  /** A new leader reads the stored state from etcd itself rather than trusting a snapshot that may lag. */
  private async refresh(): Promise<void> {
    const certDir = CERT_PREFIX.slice(0, CERT_PREFIX.lastIndexOf('/') + 1);
    const [states, certs] = await Promise.all([
      this.options.store.list(this.key(STATE_DIR.replace(/\/$/, ''))),
      this.options.store.list(this.key(certDir.replace(/\/$/, ''))),
    ]);
    const entries = new Map<string, string>();
    for (const [key, value] of states.entries) entries.set(`${STATE_DIR}${key}`, value);
    for (const [key, value] of certs.entries) if (`${certDir}${key}`.startsWith(CERT_PREFIX)) entries.set(`${certDir}${key}`, value);
    const revision = BigInt(states.revision);
    if (revision > this.lastWriteRevision) this.lastWriteRevision = revision;
    this.readStored(entries);
  }

  private wake(): void {
    if (!this.leading || !this.ready || this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.pass(), 0);
  }

  /** Starts what is due (up to `concurrency` at once) and sets the timer for the next look. */
  private pass(): void {
    if (!this.leading || !this.ready || this.stopped) return;
    const now = this.now();
    let nextAt = now.getTime() + jittered(this.checkIntervalMs, this.random);
    for (const domain of this.desired) {
      if (this.running.has(domain)) continue;
      const decision = decide(this.states.get(domain), this.certs.get(domain), now, this.renewDays, this.options.minRenewIntervalMs);
      if (!decision.due) {
        nextAt = Math.min(nextAt, decision.at.getTime());
        continue;
      }
      if (this.running.size >= this.concurrency) continue; // a finishing attempt wakes us
      const epoch = this.epoch;
      const attempt = this.attempt(domain, decision.reason, epoch).finally(() => {
        this.running.delete(domain);
        this.wake();
      });
      this.running.set(domain, attempt);
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.pass(), Math.max(0, Math.min(nextAt - Date.now(), 2 ** 31 - 1)));
  }

  // ---- one attempt ----------------------------------------------------------------------------

  private async attempt(domain: string, reason: string, epoch: number): Promise<void> {
    const log = this.logger.child({ domain });
    const signal = this.abort.signal;
    const guard = () => {
      if (this.stopped || signal.aborted || epoch !== this.epoch) throw new Interrupted('stopping or no longer the leader');
      if (!this.leader.isLeader()) throw new Interrupted('the leader lease was not renewed in time');
      if (!this.desired.includes(domain)) throw new Interrupted('the domain is no longer wanted');
    };
    /** Awaits `work`, but gives up at once when the attempt is interrupted. */
    const step = async <T>(work: Promise<T>): Promise<T> => {
      work.catch(() => undefined);
      const interruption = interrupted(signal);
      try {
        const result = await Promise.race([work, interruption.promise]);
        guard();
        return result;
      } finally {
        interruption.dispose();
      }
    };

    const published = new Set<string>(this.states.get(domain)?.pending?.tokens ?? []);
    let connection: AcmeConnection | undefined;
    let settled = false;
    log.info({ reason }, 'ACME: ordering a certificate');
    try {
      guard();
      const account = await step(this.ensureAccount(log));
      connection = connectAcme({
        directoryUrl: this.options.directoryUrl,
        accountKey: account.pem,
        ...(account.url ? { accountUrl: account.url } : {}),
        ...(this.options.directoryCa ? { directoryCa: this.options.directoryCa } : {}),
        ...(this.options.poll ? { poll: this.options.poll } : {}),
        ...(this.options.requestTimeoutMs ? { timeoutMs: this.options.requestTimeoutMs } : {}),
      });
      const client = connection.client;
      if (!account.url) {
        await step(client.createAccount({ termsOfServiceAgreed: true, contact: [`mailto:${this.options.email}`] }));
        account.url = client.getAccountUrl();
        log.info({ account: account.url }, 'ACME account ready');
      }

      let order: acme.Order | undefined;
      const pending = this.states.get(domain)?.pending;
      if (pending) {
        const previous = await step(client.getOrder({ url: pending.orderUrl } as acme.Order).catch(() => undefined));
        const sameDomain = previous?.identifiers.length === 1 && previous.identifiers[0]?.value === domain;
        if (previous && sameDomain && (previous.status === 'pending' || previous.status === 'ready')) {
          order = previous;
          log.info({ order: order.url, status: order.status, by: pending.by }, 'ACME order resumed');
        } else {
          log.info({ order: pending.orderUrl, status: previous?.status ?? 'unreadable' }, 'ACME: the pending order cannot be finished here; starting a new one');
        }
      }
      if (!order) {
        order = await step(client.createOrder({ identifiers: [{ type: 'dns', value: domain }] }));
        log.info({ order: order.url, status: order.status }, 'ACME order created');
        await this.write(log, [this.statePut(pendingState(this.states.get(domain), domain, {
          orderUrl: order.url, startedAt: this.now().toISOString(), tokens: [...published], by: this.id,
        }, this.now()))]);
      }

      if (order.status === 'pending') {
        const authorizations = await step(client.getAuthorizations(order));
        for (const authz of authorizations) {
          if (authz.status === 'valid') continue;
          if (authz.status !== 'pending') throw new Error(`the authorization for ${authz.identifier.value} is ${authz.status}`);
          const challenge = authz.challenges.find((c) => c.type === 'http-01');
          if (!challenge) throw new Error(`the CA offers no http-01 challenge for ${authz.identifier.value}`);
          const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
          guard();
          published.add(challenge.token);
          const state = this.states.get(domain);
          await this.write(log, [
            this.put(`${CHALLENGE_DIR}${challenge.token}`, keyAuthorization),
            this.statePut(pendingState(state, domain, {
              ...(state?.pending ?? { orderUrl: order.url, startedAt: this.now().toISOString(), by: this.id }),
              by: this.id,
              tokens: [...published],
            }, this.now())),
          ]);
          log.info({ token: challenge.token }, 'ACME challenge published');
          await step(this.waitServed(challenge.token, log, signal));
          if (challenge.status === 'pending') await step(client.completeChallenge(challenge));
          await step(client.waitForValidStatus(challenge));
          log.info({ token: challenge.token }, 'ACME challenge validated');
        }
        order = await this.untilValid(client, order, step);
      }
      if (order.status !== 'ready') throw new Error(`the order is ${order.status}, not ready to finalize`);

      const key = this.options.keyType === 'rsa' ? await acme.crypto.createPrivateRsaKey(2048) : await acme.crypto.createPrivateEcdsaKey('P-256');
      const [, csr] = await acme.crypto.createCsr({ ...(domain.length <= 64 ? { commonName: domain } : {}), altNames: [domain] }, key);
      guard();
      order = await step(client.finalizeOrder(order, csr));
      log.info({ order: order.url, status: order.status }, 'ACME order finalized');
      order = await this.untilValid(client, order, step);
      const chain = await step(client.getCertificate(order));

      const pem = `${chain.trim()}\n${key.toString('utf8').trim()}\n`;
      const bundle = parseBundle(pem, { kind: 'acme', ref: `${CERT_PREFIX}${domain}` }, this.now());
      if (!bundle.names.includes(domain)) throw new Error(`the CA issued a certificate for ${bundle.names.join(', ')}, not ${domain}`);
      const stored = this.options.vaultKey ? encryptBundle(bundle.pem, this.options.vaultKey) : bundle.pem;
      guard();
      await this.write(log, [
        this.put(`${CERT_PREFIX}${domain}`, stored),
        this.statePut(issuedState(this.states.get(domain), domain, bundle.notAfter, this.now())),
        ...this.tokenDeletes(published),
      ]);
      settled = true;
      this.certs.set(domain, { notAfter: bundle.notAfter, fingerprint: bundle.fingerprint });
      log.info({
        key: `${CERT_PREFIX}${domain}`, notAfter: bundle.notAfter.toISOString(), fingerprint: bundle.fingerprint,
        serial: new X509Certificate(chain).serialNumber, encrypted: this.options.vaultKey !== undefined,
      }, 'ACME certificate stored');
    } catch (error) {
      if (error instanceof Interrupted) {
        log.info({ why: error.message }, 'ACME: attempt interrupted; the pending order is resumed later');
        return;
      }
      const failure: AttemptFailure = connection?.explain(error) ?? { message: (error as Error).message };
      const previous = this.states.get(domain);
      const { state, delayMs } = failedState(previous, domain, failure, this.now(), this.backoff, this.random);
      const withTokens: AcmeDomainState = state.pending ? { ...state, pending: { ...state.pending, tokens: [] } } : state;
      try {
        await this.write(log, [this.statePut(withTokens), ...this.tokenDeletes(published)]);
        settled = true;
      } catch (writeError) {
        log.warn({ err: (writeError as Error).message }, 'ACME: cannot record the failure');
      }
      log.warn({
        err: failure.message, type: failure.type, status: failure.status, failures: state.failures,
        retryInMs: delayMs, nextAttempt: state.nextAttempt,
        ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
      }, 'ACME attempt failed');
    } finally {
      if (!settled && published.size > 0) await this.cleanUpTokens(domain, published, log);
      connection?.close();
    }
  }

  /**
   * Deletes the challenge tokens of an interrupted attempt, fenced: only while this replica still
   * leads. A replica that lost leadership leaves them to the new leader, which may be using the
   * very same tokens to finish the order (they are listed in the domain's pending state).
   */
  private async cleanUpTokens(domain: string, tokens: ReadonlySet<string>, log: Logger): Promise<void> {
    const state = this.states.get(domain);
    try {
      await this.write(log, [
        ...(state?.pending ? [this.statePut({ ...state, pending: { ...state.pending, tokens: [] }, updatedAt: this.now().toISOString() })] : []),
        ...this.tokenDeletes(tokens),
      ]);
      log.info({ tokens: [...tokens] }, 'ACME challenge tokens removed');
    } catch (error) {
      log.info({ tokens: [...tokens], why: (error as Error).message }, 'ACME: challenge tokens left for the new leader');
    }
  }

  /** The account key from etcd, created (once, by the leader) when there is none. */
  private ensureAccount(log: Logger): Promise<{ pem: string; url?: string }> {
    if (!this.account) {
      const epoch = this.epoch;
      this.account = this.loadAccount(log);
      this.account.catch(() => {
        if (epoch === this.epoch) this.account = undefined;
      });
    }
    return this.account;
  }

  private async loadAccount(log: Logger): Promise<{ pem: string; url?: string }> {
    const key = this.key(ACCOUNT_KEY);
    const read = async () => {
      const stored = await this.options.store.get(key);
      if (stored === undefined) return undefined;
      try {
        return decryptBundle(stored, this.options.vaultKey);
      } catch (error) {
        if (error instanceof VaultError) throw new Error(`the ACME account key at ${ACCOUNT_KEY} cannot be used: it ${error.message} (delete it to have a new account created)`);
        throw error;
      }
    };
    const existing = await read();
    if (existing !== undefined) return { pem: existing };
    const pem = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString('utf8');
    const value = this.options.vaultKey ? encryptBundle(pem, this.options.vaultKey) : pem;
    const result = await this.options.store.fencedWrite(this.leader.fence(), [{ type: 'create', key, value }]);
    if (result.succeeded) {
      log.info({ key: ACCOUNT_KEY, encrypted: this.options.vaultKey !== undefined }, 'ACME account key created');
      return { pem };
    }
    const raced = await read();
    if (raced === undefined) throw new Interrupted('no longer the leader');
    return { pem: raced };
  }

  /** waitForValidStatus for an order, keeping its URL (acme-client returns the bare resource). */
  private async untilValid(client: acme.Client, order: acme.Order, step: <T>(work: Promise<T>) => Promise<T>): Promise<acme.Order> {
    const current = await step(client.waitForValidStatus(order));
    return { ...current, url: order.url };
  }

  /**
   * Waits until every replica that announced itself has confirmed that its HAProxy serves the
   * token (ChallengeAcks), so that whichever replica the CA reaches answers. Replicas that do not
   * confirm within servedTimeoutMs are named in a warning, and the CA is asked anyway.
   */
  private async waitServed(token: string, log: Logger, signal: AbortSignal): Promise<void> {
    const timeoutMs = this.options.servedTimeoutMs ?? 10_000;
    const started = Date.now();
    while (!signal.aborted) {
      const { replicas, missing } = ackStatus(this.acmeKeys, token);
      if (replicas.length === 0 && this.acks === undefined) return; // nothing to check with
      if (replicas.length > 0 && missing.length === 0) {
        log.info({ token, replicas: replicas.length, afterMs: Date.now() - started }, 'ACME challenge served by every replica');
        return;
      }
      if (Date.now() - started > timeoutMs) {
        log.warn({ token, missing, waitedMs: Date.now() - started }, 'ACME: not every replica confirmed it serves the challenge token; asking the CA to validate anyway');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  // ---- etcd writes (fenced on leadership) -------------------------------------------------------

  private key(relative: string): string {
    return `${this.options.prefix}/${relative}`;
  }

  private put(relative: string, value: string): WriteOp {
    return { op: { type: 'put', key: this.key(relative), value }, relative, value };
  }

  private del(relative: string): WriteOp {
    return { op: { type: 'delete', key: this.key(relative) }, relative, value: undefined };
  }

  /** A token, and the replicas' confirmations for it. */
  private tokenDeletes(tokens: Iterable<string>): WriteOp[] {
    return [...tokens].flatMap((token) => [
      this.del(`${CHALLENGE_DIR}${token}`),
      { op: { type: 'delete-prefix', key: this.key(`${ACK_DIR}${token}/`) }, relative: `${ACK_DIR}${token}/`, value: undefined },
    ]);
  }

  private statePut(state: AcmeDomainState): WriteOp {
    return this.put(`${STATE_DIR}${state.domain}`, serializeState(state));
  }

  private async write(log: Logger, ops: readonly WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    const result = await this.options.store.fencedWrite(this.leader.fence(), ops.map((o) => o.op));
    if (!result.succeeded) throw new Interrupted('no longer the leader (fenced write refused)');
    const revision = BigInt(result.revision);
    if (revision > this.lastWriteRevision) this.lastWriteRevision = revision;
    for (const { relative, value } of ops) {
      if (!relative.startsWith(STATE_DIR) || value === undefined) continue;
      const domain = relative.slice(STATE_DIR.length);
      const state = parseState(value, domain);
      if (state) this.states.set(domain, state);
    }
    log.trace({ keys: ops.map((o) => o.relative), revision: String(revision) }, 'ACME state written');
  }
}

const STOP_TIMEOUT_MS = 5000;

/** Waits for `work`, but no longer than `ms`. */
async function withDeadline(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => undefined), new Promise((resolve) => {
    timer = setTimeout(resolve, ms);
  })]);
  clearTimeout(timer);
}

/** A promise that rejects when `signal` aborts; dispose() removes its listener. */
function interrupted(signal: AbortSignal): { promise: Promise<never>; dispose: () => void } {
  let fail: () => void = () => undefined;
  const promise = new Promise<never>((_, reject) => {
    fail = () => reject(new Interrupted('stopping or no longer the leader'));
  });
  promise.catch(() => undefined);
  if (signal.aborted) fail();
  else signal.addEventListener('abort', fail, { once: true });
  return { promise, dispose: () => signal.removeEventListener('abort', fail) };
}
