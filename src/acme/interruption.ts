import { CodedError } from '../errors.js';
/**
 * Ending an attempt early: leadership ended, the manager stops, or the domain is no longer
 * wanted. An interrupted attempt does not count as a failure; its pending order is resumed later.
 */
export class Interrupted extends Error {
  readonly code = 'acme-interrupted';

  constructor(message: string) {
    super(message);
    this.name = 'Interrupted';
  }
}

/** Why an attempt failed on our side of the CA's answers, as a stable code (logs and tests read the code). */
export type AcmeErrorCode =
  | 'authorization-not-pending'
  | 'no-http-01-challenge'
  | 'no-dns-01-challenge'
  | 'order-not-ready'
  | 'certificate-mismatch'
  | 'account-key-unusable'
  | 'dns-hook-failed'
  | 'dns-update-failed'
  | 'dns-not-propagated';

export class AcmeError extends CodedError<AcmeErrorCode> {}

/** A promise that rejects when `signal` aborts; dispose() removes its listener. */
export function interrupted(signal: AbortSignal): { promise: Promise<never>; dispose: () => void } {
  let fail: () => void = () => undefined;
  const promise = new Promise<never>((_, reject) => {
    fail = () => reject(new Interrupted('stopping or no longer the leader'));
  });
  promise.catch(() => undefined);
  if (signal.aborted) fail();
  else signal.addEventListener('abort', fail, { once: true });
  return { promise, dispose: () => signal.removeEventListener('abort', fail) };
}

/** Waits for `work`, but no longer than `ms`. */
export async function withDeadline(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.catch(() => undefined),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}
