import { ExponentialBackoff, halfJitterGenerator, noJitterGenerator, type IBackoff } from 'cockatiel';

/** How long to wait between attempts: doubles from `firstMs` up to `maxMs`. */
export interface BackoffPolicy {
  readonly firstMs: number;
  readonly maxMs: number;
  /**
   * Spread each delay over its upper half, so replicas that failed together do not retry
   * together (etcd, the CA). Off where a test or an operator reads the exact delays.
   */
  readonly jitter?: boolean;
}

/**
 * The one backoff of edgelb: cockatiel's exponential backoff behind a small stateful cursor,
 * for loops that schedule their own timers (cockatiel's `retry()` policies wrap a call instead).
 */
export class Backoff {
  private current: IBackoff<unknown> | undefined;
  private readonly factory: ExponentialBackoff<unknown>;

  constructor(readonly policy: BackoffPolicy) {
    this.factory = new ExponentialBackoff({
      initialDelay: policy.firstMs,
      maxDelay: policy.maxMs,
      exponent: 2,
      generator: (policy.jitter ? halfJitterGenerator : noJitterGenerator) as never,
    });
  }

  /** The delay before the next attempt: `firstMs` after a reset, then twice the last, at most `maxMs`. */
  next(): number {
    this.current = this.current ? this.current.next(undefined) : this.factory.next();
    return Math.round(this.current.duration);
  }

  /** After a success: the next failure waits `firstMs` again. */
  reset(): void {
    this.current = undefined;
  }
}
