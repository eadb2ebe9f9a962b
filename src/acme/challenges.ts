import http from 'node:http';
import type { KvLease, KvStore } from '../etcd/store.js';
import type { Logger } from '../log.js';
import type { Entries } from '../model/types.js';
import { Backoff } from '../util/backoff.js';
import { ACK_DIR, CHALLENGE_DIR, REPLICA_DIR } from './keys.js';

export interface ChallengeAcksOptions {
  readonly store: KvStore;
  readonly prefix: string;
  /** This replica's id (the same as in the leader election). */
  readonly id: string;
  /** This replica's load balancer HTTP port, checked on 127.0.0.1. */
  readonly httpPort: number;
  /** Lease TTL: a dead replica stops being waited for within about this long. */
  readonly ttlSeconds: number;
  readonly logger: Logger;
  /** Longest a replica keeps checking one token (default 60 s). */
  readonly checkTimeoutMs?: number;
}

/**
 * Confirms, from every replica, that its own HAProxy serves each challenge token, so the leader
 * asks the CA to validate only once every replica answers: the CA may reach any of them, and a
 * failed validation costs an order and counts against the CA's failed-validation rate limit.
 *
 * Each replica announces itself at `acme/replicas/<id>` and writes `acme/acks/<token>/<id>` once
 * http://127.0.0.1:<httpPort>/.well-known/acme-challenge/<token> returns the key authorization;
 * both on its own lease, so a replica that dies stops being waited for within the TTL. The
 * leader deletes a token's acks together with the token.
 */
export class ChallengeAcks {
  private lease: KvLease | undefined;
  private tokens = new Map<string, string>();
  private readonly checking = new Set<string>();
  private readonly acked = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  /** Announcing again after a lost lease or a refused write. */
  private readonly retry = new Backoff({ firstMs: 500, maxMs: 10_000 });
  private stopped = false;

  constructor(private readonly options: ChallengeAcksOptions) {}

  start(): void {
    void this.register();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const lease = this.lease;
    this.lease = undefined;
    // Revoking removes this replica's announcement and acks at once.
    await lease?.revoke().catch(() => undefined);
  }

  /** Every snapshot: start checking new tokens, forget deleted ones. */
  offer(entries: Entries): void {
    const tokens = new Map<string, string>();
    for (const [key, value] of entries) {
      if (key.startsWith(CHALLENGE_DIR)) tokens.set(key.slice(CHALLENGE_DIR.length), value.trim());
    }
    this.tokens = tokens;
    for (const token of [...this.acked]) if (!tokens.has(token)) this.acked.delete(token);
    if (!this.lease) return;
    for (const [token, keyAuthorization] of tokens) {
      if (this.acked.has(token) || this.checking.has(token)) continue;
      if (entries.has(`${ACK_DIR}${token}/${this.options.id}`)) {
        this.acked.add(token);
        continue;
      }
      void this.check(token, keyAuthorization);
    }
  }

  private async register(): Promise<void> {
    if (this.stopped) return;
    const { store, prefix, id, httpPort, ttlSeconds, logger } = this.options;
    const lease = store.lease(ttlSeconds);
    lease.onLost(() => {
      if (lease !== this.lease) return;
      this.lease = undefined;
      this.acked.clear(); // they went with the lease
      this.retryTimer = setTimeout(() => void this.register(), this.retry.next());
    });
    try {
      await lease.put(`${prefix}/${REPLICA_DIR}${id}`, JSON.stringify({ httpPort }));
      if (this.stopped) {
        await lease.revoke().catch(() => undefined);
        return;
      }
      this.lease = lease;
      this.retry.reset();
    } catch (error) {
      const retryInMs = this.retry.next();
      logger.warn({ err: (error as Error).message, retryInMs }, 'ACME: cannot announce this replica in etcd; retrying');
      lease.release();
      this.retryTimer = setTimeout(() => void this.register(), retryInMs);
    }
  }

  private async check(token: string, keyAuthorization: string): Promise<void> {
    this.checking.add(token);
    const started = Date.now();
    const deadline = started + (this.options.checkTimeoutMs ?? 60_000);
    try {
      while (!this.stopped && this.tokens.get(token) === keyAuthorization && Date.now() < deadline) {
        const body = await fetchLocal(this.options.httpPort, `/.well-known/acme-challenge/${token}`, 'acme-check.invalid').catch(() => undefined);
        if (body?.trim() === keyAuthorization) {
          const lease = this.lease;
          if (!lease) return;
          await lease.put(`${this.options.prefix}/${ACK_DIR}${token}/${this.options.id}`, String(Date.now()));
          this.acked.add(token);
          this.options.logger.debug({ token, afterMs: Date.now() - started }, 'ACME challenge served by this replica');
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } catch (error) {
      this.options.logger.warn({ token, err: (error as Error).message }, 'ACME: cannot confirm the challenge token');
    } finally {
      this.checking.delete(token);
    }
  }
}

/** Replica ids announced in `entries`, and which of them acknowledged `token`. */
export function ackStatus(entries: Entries, token: string): { replicas: string[]; missing: string[] } {
  const replicas: string[] = [];
  const acked = new Set<string>();
  const ackPrefix = `${ACK_DIR}${token}/`;
  for (const key of entries.keys()) {
    if (key.startsWith(REPLICA_DIR)) replicas.push(key.slice(REPLICA_DIR.length));
    else if (key.startsWith(ackPrefix)) acked.add(key.slice(ackPrefix.length));
  }
  return { replicas: replicas.sort(), missing: replicas.filter((id) => !acked.has(id)).sort() };
}

/** GET on the local load balancer; resolves with the body of a 200, rejects otherwise. */
export function fetchLocal(port: number, path: string, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, headers: { host }, timeout: 2000, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('end', () =>
        response.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`HTTP ${response.statusCode}`)),
      );
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', reject);
  });
}

/**
 * Waits until every replica that announced itself has confirmed that its HAProxy serves the
 * token (ChallengeAcks), so that whichever replica the CA reaches answers. Replicas that do not
 * confirm within `timeoutMs` are named in a warning, and the CA is asked anyway. `entries` gives
 * the keys under `acme/` of the newest snapshot; `confirming` says whether this replica takes
 * part (without any replica announced and none here there is nothing to wait for).
 */
export async function waitServed(
  token: string,
  options: { readonly entries: () => Entries; readonly confirming: boolean; readonly timeoutMs: number; readonly log: Logger; readonly signal: AbortSignal },
): Promise<void> {
  const { log, signal, timeoutMs } = options;
  const started = Date.now();
  while (!signal.aborted) {
    const { replicas, missing } = ackStatus(options.entries(), token);
    if (replicas.length === 0 && !options.confirming) return;
    if (replicas.length > 0 && missing.length === 0) {
      log.info({ token, replicas: replicas.length, afterMs: Date.now() - started }, 'ACME challenge served by every replica');
      return;
    }
    if (Date.now() - started > timeoutMs) {
      log.warn(
        { token, missing, waitedMs: Date.now() - started },
        'ACME: not every replica confirmed it serves the challenge token; asking the CA to validate anyway',
      );
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, SERVED_POLL_MS));
  }
}

/** The snapshots bring the acknowledgements; this only bounds how late one is noticed. */
const SERVED_POLL_MS = 25;
