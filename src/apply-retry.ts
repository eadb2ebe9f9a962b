import { systemCodesOf } from './errors.js';
import type { Logger } from './log.js';
import { Backoff } from './util/backoff.js';

// Failures of the machine rather than of the input: the same apply can succeed once the
// operator frees space or makes the state dir writable again. A config HAProxy rejects is
// not retried: the same input would fail the same way until the entries change.
const ENVIRONMENTAL: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO', 'EMFILE', 'ENFILE', 'EBUSY']);

export interface ApplyRetryOptions {
  /** Applies the newest input again. */
  readonly retry: () => void;
  readonly logger: Logger;
  readonly firstDelayMs?: number;
  readonly maxDelayMs?: number;
}

/**
 * Retries an apply that failed because of the disk (state dir full or read-only, ...) with a
 * capped exponential backoff, so edgelb recovers on its own once the disk is fixed instead of
 * waiting for the next change in etcd. Meanwhile HAProxy keeps serving the last good config.
 */
export class ApplyRetry {
  private readonly backoff: Backoff;
  private lastFailureAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ApplyRetryOptions) {
    this.backoff = new Backoff({ firstMs: options.firstDelayMs ?? 500, maxMs: options.maxDelayMs ?? 10_000 });
  }

  /**
   * Called with the error of every failed apply: retried when the system's code on it or on its
   * `cause` (ENOSPC, EROFS, EACCES, ...) says the machine failed, whatever the message says.
   */
  failed(error: Error): void {
    if (!systemCodesOf(error).some((code) => ENVIRONMENTAL.has(code))) return;
    const now = Date.now();
    // A failure long after the previous one starts a new series: the last retry must have worked.
    if (now - this.lastFailureAt > 2 * this.backoff.policy.maxMs) this.backoff.reset();
    this.lastFailureAt = now;
    const delay = this.backoff.next();
    this.options.logger.warn({ retryInMs: delay }, 'the apply failed because of the disk; retrying');
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.options.retry(), delay);
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
