import type { Logger } from '../log.js';
import type { Probe, ProbeCheck, ProbeTarget } from './health-probe.js';

/** One server to prove healthy before it gets traffic. */
export interface ProofRequest {
  /** `proxy/server`, as the runtime API names it. */
  readonly id: string;
  readonly target: ProbeTarget;
  readonly check: ProbeCheck;
  /**
   * Keep trying through the window (an instance that just appeared may still be starting), or
   * one attempt (at a start of HAProxy, when instances have been running all along).
   */
  readonly retry: boolean;
  /** Runs the runtime commands that let traffic in. */
  readonly onProven: () => Promise<void>;
  /** When every attempt failed: hand the server over to HAProxy's own checks. */
  readonly onGaveUp?: (reason: string) => Promise<void>;
  /** The request was cancelled or replaced by a newer one for the same server. */
  readonly onCancel?: () => void;
}

export interface ServerProverOptions {
  readonly probe: Probe;
  readonly logger: Logger;
  /** One attempt may take this long. */
  readonly timeoutMs: number;
  /** Retried attempts stop this long after the first: by then HAProxy's own checks have decided. */
  readonly windowMs: number;
  /** Attempts in flight at once (a start proves every server). */
  readonly concurrency?: number;
}

export interface ProverCounters {
  readonly proven: number;
  readonly gaveUp: number;
  readonly pending: number;
}

/** Delays between attempts: quick at first (a process binding its port), then at most a second apart. */
const RETRY_DELAYS_MS = [25, 50, 100, 200, 400, 800] as const;
const MAX_RETRY_DELAY_MS = 1000;
const DEFAULT_CONCURRENCY = 64;

interface Pending {
  readonly request: ProofRequest;
  readonly startedAt: number;
  attempts: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Runs the controller's own first health check of each new or moved server, so that a healthy
 * instance gets traffic milliseconds after it appears instead of after HAProxy's checks (one
 * interval, then `rise`). A newer request for the same server replaces the older one, so a
 * result never applies to an address or a server that has changed since. Attempts beyond
 * `concurrency` wait in line.
 */
export class ServerProver {
  private readonly pending = new Map<string, Pending>();
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private stopped = false;
  private proven = 0;
  private gaveUp = 0;

  constructor(private readonly options: ServerProverOptions) {}

  prove(request: ProofRequest): void {
    if (this.stopped) return;
    this.cancel(request.id);
    const entry: Pending = { request, startedAt: Date.now(), attempts: 0, timer: undefined };
    this.pending.set(request.id, entry);
    this.enqueue(entry);
  }

  /** The server was removed or moved again: whatever its probe finds no longer matters. */
  cancel(id: string): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.pending.delete(id);
    entry.request.onCancel?.();
  }

  /** Keeps the pending requests `keep` accepts and cancels the others (a reload changed them). */
  retain(keep: (request: ProofRequest) => boolean): void {
    for (const [id, entry] of [...this.pending]) if (!keep(entry.request)) this.cancel(id);
  }

  has(id: string): boolean {
    return this.pending.has(id);
  }

  counters(): ProverCounters {
    return { proven: this.proven, gaveUp: this.gaveUp, pending: this.pending.size };
  }

  stop(): void {
    this.stopped = true;
    for (const id of [...this.pending.keys()]) this.cancel(id);
    this.queue.length = 0;
  }

  private enqueue(entry: Pending): void {
    this.queue.push(entry);
    this.drain();
  }

  private drain(): void {
    const limit = this.options.concurrency ?? DEFAULT_CONCURRENCY;
    while (this.inFlight < limit && this.queue.length > 0) {
      const entry = this.queue.shift()!;
      if (this.pending.get(entry.request.id) !== entry) continue;
      this.inFlight++;
      void this.attempt(entry)
        // A probe or a callback that throws must not end the process (an unhandled rejection would).
        .catch((error: Error) => this.options.logger.warn({ server: entry.request.id, err: error.message }, 'first health check failed unexpectedly'))
        .finally(() => {
          this.inFlight--;
          this.drain();
        });
    }
  }

  private async attempt(entry: Pending): Promise<void> {
    const { request } = entry;
    entry.attempts++;
    const result = await this.options.probe(request.target, request.check, this.options.timeoutMs);
    if (this.pending.get(request.id) !== entry) return;
    const { logger } = this.options;
    if (result.ok) {
      this.pending.delete(request.id);
      this.proven++;
      const fields = { server: request.id, attempts: entry.attempts, afterMs: Date.now() - entry.startedAt };
      await request.onProven().then(
        () => logger.debug(fields, 'instance passed its first health check: in service'),
        (error: Error) => logger.warn({ ...fields, err: error.message }, 'instance passed its first health check, but HAProxy refused to put it in service'),
      );
      return;
    }
    const delay = RETRY_DELAYS_MS[entry.attempts - 1] ?? MAX_RETRY_DELAY_MS;
    if (request.retry && Date.now() + delay - entry.startedAt < this.options.windowMs) {
      entry.timer = setTimeout(() => {
        entry.timer = undefined;
        if (this.pending.get(request.id) === entry) this.enqueue(entry);
      }, delay);
      entry.timer.unref?.();
      return;
    }
    this.pending.delete(request.id);
    this.gaveUp++;
    const fields = { server: request.id, attempts: entry.attempts, reason: result.reason };
    // At a start every instance gets one attempt: thousands of dead ones would flood the log at info.
    logger[request.retry ? 'info' : 'debug'](fields, "instance failed its first health check: HAProxy's checks decide when it gets traffic");
    await request
      .onGaveUp?.(result.reason)
      .catch((error: Error) => logger.warn({ ...fields, err: error.message }, "cannot hand the instance over to HAProxy's checks"));
  }
}
