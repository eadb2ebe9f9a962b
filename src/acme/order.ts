import { X509Certificate } from 'node:crypto';
import acme from 'acme-client';
import type { Logger } from '../log.js';
import { parseBundle } from '../tls/bundle.js';
import { encryptBundle } from '../tls/vault.js';
import { DnsError } from './dns-wire.js';
import { cleanUpRecords, type DnsSolver, publishDnsRecord, publishedRecordsOf } from './dns-challenge.js';
import { AcmeError, Interrupted, interrupted } from './interruption.js';
import { connectAcme, type AcmeConnection, type AcmeConnectionOptions } from './issuer.js';
import { CHALLENGE_DIR, certKeyOf } from './keys.js';
import { failedState, type AttemptFailure, type OrderBackoff } from './schedule.js';
import { issuedState, pendingState, type AcmeDomainState } from './state.js';
import type { AcmeStorage } from './storage.js';

/** What one attempt needs: the CA's settings, the storage, and the manager's hooks. */
export interface OrderContext {
  /** This replica's id (recorded as who worked on a pending order). */
  readonly id: string;
  readonly email: string;
  readonly directoryUrl: string;
  readonly directoryCa?: string;
  readonly poll?: AcmeConnectionOptions['poll'];
  readonly requestTimeoutMs?: number;
  readonly keyType?: 'ec' | 'rsa';
  readonly vaultKey?: string;
  readonly backoff: OrderBackoff;
  readonly now: () => Date;
  readonly random: () => number;
  readonly storage: AcmeStorage;
  /** The account key (and URL, once known): loaded or created once per leadership. */
  readonly account: (log: Logger) => Promise<{ pem: string; url?: string }>;
  /** Resolves once the replicas serve `token` (or they were waited for long enough). */
  readonly waitServed: (token: string, log: Logger, signal: AbortSignal) => Promise<void>;
  /** The challenge this domain is validated by (a wildcard: dns-01). */
  readonly challenge: 'http-01' | 'dns-01';
  /** Publishing DNS-01 records, when configured. */
  readonly dns?: DnsSolver;
  /** Aborts when leadership ends or the manager stops. */
  readonly signal: AbortSignal;
  /** Throws Interrupted when the attempt must end (no longer leading, domain no longer wanted). */
  readonly guard: () => void;
}

/**
 * One attempt at a certificate for `domain` over HTTP-01 or DNS-01, each step logged: the account,
 * the order (a pending one resumed), the challenges (HTTP-01: published at
 * `acme/challenges/<token>` for every replica's HAProxy; DNS-01: a TXT record through the DNS
 * publisher, waited for on the DNS servers), finalize, and the certificate stored in the vault. A
 * failure is recorded in the domain's state with its backoff; an interruption is not a failure.
 * Challenge tokens are cleaned up (in `finally`) while this replica still leads; DNS records
 * always are (the DNS is not fenced by leadership, and a new leader publishes its own).
 */
export async function runOrder(ctx: OrderContext, domain: string, reason: string, log: Logger): Promise<void> {
  const { storage, guard, signal } = ctx;
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
  const published = new Set<string>(storage.states.get(domain)?.pending?.tokens ?? []);
  const records = publishedRecordsOf(storage.states.get(domain)?.pending);
  let connection: AcmeConnection | undefined;
  let settled = false;
  log.info({ reason }, 'ACME: ordering a certificate');
  try {
    guard();
    const account = await step(ctx.account(log));
    connection = connectAcme({
      directoryUrl: ctx.directoryUrl,
      accountKey: account.pem,
      ...(account.url ? { accountUrl: account.url } : {}),
      ...(ctx.directoryCa ? { directoryCa: ctx.directoryCa } : {}),
      ...(ctx.poll ? { poll: ctx.poll } : {}),
      ...(ctx.requestTimeoutMs ? { timeoutMs: ctx.requestTimeoutMs } : {}),
    });
    const client = connection.client;
    if (!account.url) {
      await step(client.createAccount({ termsOfServiceAgreed: true, contact: [`mailto:${ctx.email}`] }));
      account.url = client.getAccountUrl();
      log.info({ account: account.url }, 'ACME account ready');
    }

    let order = await resumeOrder(ctx, client, domain, log, step);
    if (!order) {
      order = await step(client.createOrder({ identifiers: [{ type: 'dns', value: domain }] }));
      log.info({ order: order.url, status: order.status }, 'ACME order created');
      await storage.write(log, [
        storage.statePut(
          pendingState(
            storage.states.get(domain),
            domain,
            {
              orderUrl: order.url,
              startedAt: ctx.now().toISOString(),
              tokens: [...published],
              by: ctx.id,
            },
            ctx.now(),
          ),
        ),
      ]);
    }

    if (order.status === 'pending') {
      const authorizations = await step(client.getAuthorizations(order));
      for (const authz of authorizations) {
        if (authz.status === 'valid') continue;
        if (authz.status !== 'pending') throw new AcmeError('authorization-not-pending', `the authorization for ${authz.identifier.value} is ${authz.status}`);
        const challenge = authz.challenges.find((c) => c.type === ctx.challenge);
        if (!challenge)
          throw new AcmeError(
            ctx.challenge === 'dns-01' ? 'no-dns-01-challenge' : 'no-http-01-challenge',
            `the CA offers no ${ctx.challenge} challenge for ${authz.identifier.value}`,
          );
        const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
        guard();
        const pending = () => ({
          ...(storage.states.get(domain)?.pending ?? { orderUrl: order!.url, startedAt: ctx.now().toISOString(), tokens: [...published] }),
          by: ctx.id,
        });
        if (ctx.challenge === 'dns-01') {
          const args = {
            solver: ctx.dns,
            storage,
            domain,
            identifier: authz.identifier.value,
            value: keyAuthorization,
            records,
            pending,
            now: ctx.now,
            signal,
          };
          await publishDnsRecord(args, log, step);
        } else {
          published.add(challenge.token);
          await storage.write(log, [
            storage.put(`${CHALLENGE_DIR}${challenge.token}`, keyAuthorization),
            storage.statePut(pendingState(storage.states.get(domain), domain, { ...pending(), tokens: [...published] }, ctx.now())),
          ]);
          log.info({ token: challenge.token }, 'ACME challenge published');
          await step(ctx.waitServed(challenge.token, log, signal));
        }
        if (challenge.status === 'pending') await step(client.completeChallenge(challenge));
        await step(client.waitForValidStatus(challenge));
        log.info({ token: challenge.token, type: ctx.challenge }, 'ACME challenge validated');
      }
      order = await untilValid(client, order, step);
    }
    if (order.status !== 'ready') throw new AcmeError('order-not-ready', `the order is ${order.status}, not ready to finalize`);

    const key = ctx.keyType === 'rsa' ? await acme.crypto.createPrivateRsaKey(2048) : await acme.crypto.createPrivateEcdsaKey('P-256');
    const [, csr] = await acme.crypto.createCsr({ ...(domain.length <= 64 ? { commonName: domain } : {}), altNames: [domain] }, key);
    guard();
    order = await step(client.finalizeOrder(order, csr));
    log.info({ order: order.url, status: order.status }, 'ACME order finalized');
    order = await untilValid(client, order, step);
    const chain = await step(client.getCertificate(order));

    const pem = `${chain.trim()}\n${key.toString('utf8').trim()}\n`;
    const bundle = parseBundle(pem, { kind: 'acme', ref: certKeyOf(domain) }, ctx.now());
    if (!bundle.names.includes(domain))
      throw new AcmeError('certificate-mismatch', `the CA issued a certificate for ${bundle.names.join(', ')}, not ${domain}`);
    const stored = ctx.vaultKey ? encryptBundle(bundle.pem, ctx.vaultKey) : bundle.pem;
    guard();
    await storage.write(log, [
      storage.put(certKeyOf(domain), stored),
      storage.statePut(issuedState(storage.states.get(domain), domain, bundle.notAfter, ctx.now())),
      ...storage.tokenDeletes(published),
    ]);
    settled = true;
    storage.certs.set(domain, { notAfter: bundle.notAfter, fingerprint: bundle.fingerprint });
    log.info(
      {
        key: certKeyOf(domain),
        notAfter: bundle.notAfter.toISOString(),
        fingerprint: bundle.fingerprint,
        serial: new X509Certificate(chain).serialNumber,
        encrypted: ctx.vaultKey !== undefined,
      },
      'ACME certificate stored',
    );
  } catch (error) {
    if (error instanceof Interrupted) {
      log.info({ why: error.message }, 'ACME: attempt interrupted; the pending order is resumed later');
      return;
    }
    const ours = isDnsFailure(error) || connection === undefined;
    settled = await recordFailure(ctx, domain, ours ? { message: (error as Error).message } : connection!.explain(error), published, log);
  } finally {
    if (await cleanUpRecords(ctx.dns, records, log)) await forgetRecords(storage, domain, log);
    if (!settled && published.size > 0) await cleanUpTokens(storage, domain, published, ctx.now(), log);
    connection?.close();
  }
}

type Step = <T>(work: Promise<T>) => Promise<T>;

/** The domain's pending order, when the CA can still finish it; undefined to start a new one. */
async function resumeOrder(ctx: OrderContext, client: acme.Client, domain: string, log: Logger, step: Step): Promise<acme.Order | undefined> {
  const pending = ctx.storage.states.get(domain)?.pending;
  if (!pending) return undefined;
  const previous = await step(client.getOrder({ url: pending.orderUrl } as acme.Order).catch(() => undefined));
  const sameDomain = previous?.identifiers.length === 1 && previous.identifiers[0]?.value === domain;
  if (previous && sameDomain && (previous.status === 'pending' || previous.status === 'ready')) {
    log.info({ order: previous.url, status: previous.status, by: pending.by }, 'ACME order resumed');
    return previous;
  }
  log.info({ order: pending.orderUrl, status: previous?.status ?? 'unreadable' }, 'ACME: the pending order cannot be finished here; starting a new one');
  return undefined;
}

/** Records a failed attempt (backoff, the CA's words) and deletes its tokens; true when written. */
async function recordFailure(ctx: OrderContext, domain: string, failure: AttemptFailure, published: ReadonlySet<string>, log: Logger): Promise<boolean> {
  const { storage } = ctx;
  const { state, delayMs } = failedState(storage.states.get(domain), domain, failure, ctx.now(), ctx.backoff, ctx.random);
  const withTokens: AcmeDomainState = state.pending ? { ...state, pending: { ...state.pending, tokens: [] } } : state;
  let written = false;
  try {
    await storage.write(log, [storage.statePut(withTokens), ...storage.tokenDeletes(published)]);
    written = true;
  } catch (writeError) {
    log.warn({ err: (writeError as Error).message }, 'ACME: cannot record the failure');
  }
  log.warn(
    {
      err: failure.message,
      type: failure.type,
      status: failure.status,
      failures: state.failures,
      retryInMs: delayMs,
      nextAttempt: state.nextAttempt,
      ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
    },
    'ACME attempt failed',
  );
  return written;
}

/**
 * Deletes the challenge tokens of an interrupted attempt, fenced: only while this replica still
 * leads. A replica that lost leadership leaves them to the new leader, which may be using the
 * very same tokens to finish the order (they are listed in the domain's pending state).
 */
async function cleanUpTokens(storage: AcmeStorage, domain: string, tokens: ReadonlySet<string>, now: Date, log: Logger): Promise<void> {
  const state = storage.states.get(domain);
  try {
    await storage.write(log, [
      ...(state?.pending ? [storage.statePut({ ...state, pending: { ...state.pending, tokens: [] }, updatedAt: now.toISOString() })] : []),
      ...storage.tokenDeletes(tokens),
    ]);
    log.info({ tokens: [...tokens] }, 'ACME challenge tokens removed');
  } catch (error) {
    log.info({ tokens: [...tokens], why: (error as Error).message }, 'ACME: challenge tokens left for the new leader');
  }
}

/** A failure of the DNS side of DNS-01 (publisher, propagation): its own words, not the CA's last answer. */
function isDnsFailure(error: unknown): boolean {
  return error instanceof DnsError || (error instanceof AcmeError && (error.code.startsWith('dns-') || error.code === 'no-dns-01-challenge'));
}

/** Drops the removed DNS records from the pending state, while this replica still leads (else the next leader does). */
async function forgetRecords(storage: AcmeStorage, domain: string, log: Logger): Promise<void> {
  const state = storage.states.get(domain);
  if (!state?.pending?.records) return;
  const { records: _records, ...pending } = state.pending;
  await storage.write(log, [storage.statePut({ ...state, pending })]).catch(() => undefined);
}

/** waitForValidStatus for an order, keeping its URL (acme-client returns the bare resource). */
async function untilValid(client: acme.Client, order: acme.Order, step: Step): Promise<acme.Order> {
  const current = await step(client.waitForValidStatus(order));
  return { ...current, url: order.url };
}
