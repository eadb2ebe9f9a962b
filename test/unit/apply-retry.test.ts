import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApplyRetry } from '../../src/apply-retry.js';
import { EdgelbError, systemCodesOf } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { WriteError } from '../../src/util/atomic-write.js';

// Which failed applies are retried, and when: decided by the system's error code on the failure
// (or its cause), with the project's backoff, under fake timers.

function systemError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: something the system said`), { code });
}

describe('ApplyRetry', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function retrier() {
    const retries: number[] = [];
    const started = Date.now();
    const retry = new ApplyRetry({
      retry: () => retries.push(Date.now() - started),
      logger: createLogger('silent', false),
      firstDelayMs: 100,
      maxDelayMs: 1000,
    });
    return { retry, retries };
  }

  it('retries a failure of the disk, by the code on the error or on its cause, backing off while it keeps failing', async () => {
    const { retry, retries } = retrier();
    retry.failed(new WriteError('/state/haproxy.cfg', 'ENOSPC', systemError('ENOSPC')));
    await vi.advanceTimersByTimeAsync(100);
    expect(retries).toEqual([100]);
    retry.failed(new Error('the apply failed', { cause: systemError('EROFS') }));
    await vi.advanceTimersByTimeAsync(200);
    expect(retries).toEqual([100, 300]);
    retry.failed(systemError('EACCES'));
    await vi.advanceTimersByTimeAsync(400);
    expect(retries).toEqual([100, 300, 700]);
  });

  it('does not retry what the same input would fail again, whatever words the message holds', async () => {
    const { retry, retries } = retrier();
    retry.failed(new Error('HAProxy rejected the config: [ALERT] cannot bind ENOSPC'));
    retry.failed(new EdgelbError('haproxy_reload_refused', 'HAProxy refused the new config on reload'));
    retry.failed(systemError('ECONNREFUSED'));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(retries).toEqual([]);
  });

  it('starts a new series after a quiet spell: the last retry worked', async () => {
    const { retry, retries } = retrier();
    retry.failed(systemError('ENOSPC'));
    await vi.advanceTimersByTimeAsync(100);
    retry.failed(systemError('ENOSPC'));
    await vi.advanceTimersByTimeAsync(200);
    await vi.advanceTimersByTimeAsync(5000);
    retry.failed(systemError('ENOSPC'));
    await vi.advanceTimersByTimeAsync(100);
    expect(retries).toEqual([100, 300, 5400]);
  });

  it('decides on codes, never on words: a rejected config naming ENOSPC is not retried, a WriteError wrapping ENOSPC is', async () => {
    const { retry, retries } = retrier();
    retry.failed(new EdgelbError('haproxy_config_rejected', 'HAProxy rejected the config: ENOSPC is not a keyword'));
    await vi.advanceTimersByTimeAsync(1000);
    expect(retries).toEqual([]);
    retry.failed(new WriteError('/state/haproxy.cfg', 'ENOSPC', systemError('ENOSPC')));
    await vi.advanceTimersByTimeAsync(100);
    expect(retries).toEqual([1100]);
  });

  it('stops retrying once stopped', async () => {
    const { retry, retries } = retrier();
    retry.failed(systemError('EIO'));
    retry.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(retries).toEqual([]);
  });
});

describe('systemCodesOf', () => {
  it('lists the system codes along the cause chain, never an edgelb code', () => {
    const wrapped = new EdgelbError('haproxy_socket_unreachable', '/state/haproxy.sock: connect EACCES', { cause: systemError('EACCES') });
    expect(systemCodesOf(new Error('outer', { cause: wrapped }))).toEqual(['EACCES']);
    expect(systemCodesOf('ENOSPC')).toEqual([]);
  });
});
