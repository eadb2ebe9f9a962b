import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../src/acme/issuer.js';
import { backoffDelayMs, decide, failedState, isRateLimited, jittered } from '../../src/acme/schedule.js';
import { issuedState, parseState, pendingState, serializeState, type AcmeDomainState } from '../../src/acme/state.js';

const DAY = 86_400_000;
const now = new Date('2030-01-01T00:00:00Z');
const backoff = { baseMs: 60_000, capMs: 6 * 3600_000 };
const mid = () => 0.5; // no jitter

describe('backoffDelayMs', () => {
  it('doubles from the base up to the cap', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, backoff, mid))).toEqual([60_000, 120_000, 240_000, 480_000, 960_000]);
    expect(backoffDelayMs(9, backoff, mid)).toBe(15_360_000);
    expect(backoffDelayMs(10, backoff, mid)).toBe(6 * 3600_000);
    expect(backoffDelayMs(1000, backoff, mid)).toBe(6 * 3600_000);
  });

  it('jitters by ±10% and never goes above the cap', () => {
    expect(backoffDelayMs(1, backoff, () => 0)).toBe(54_000);
    expect(backoffDelayMs(1, backoff, () => 0.999999)).toBe(66_000);
    expect(backoffDelayMs(20, backoff, () => 0.999999)).toBe(6 * 3600_000);
    expect(backoffDelayMs(20, backoff, () => 0)).toBe(0.9 * 6 * 3600_000);
  });

  it('jittered check interval stays within ±10%', () => {
    for (const r of [0, 0.25, 0.5, 0.999]) {
      const value = jittered(3600_000, () => r);
      expect(value).toBeGreaterThanOrEqual(3240_000);
      expect(value).toBeLessThanOrEqual(3960_000);
    }
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('120', now.getTime())).toBe(120_000);
    expect(parseRetryAfter('Tue, 01 Jan 2030 01:00:00 GMT', now.getTime())).toBe(3600_000);
    expect(parseRetryAfter('Mon, 31 Dec 2029 01:00:00 GMT', now.getTime())).toBe(0);
    expect(parseRetryAfter('soon', now.getTime())).toBeUndefined();
    expect(parseRetryAfter(undefined, now.getTime())).toBeUndefined();
  });
});

describe('failedState', () => {
  it('counts failures, keeps the pending order, records the CA error and the next attempt', () => {
    const pending = pendingState(undefined, 'a.example.com', { orderUrl: 'https://ca/order/1', startedAt: now.toISOString(), tokens: ['t'], by: 'r1' }, now);
    const first = failedState(pending, 'a.example.com', { message: 'Connection refused', type: 'urn:ietf:params:acme:error:connection' }, now, backoff, mid);
    expect(first.delayMs).toBe(60_000);
    expect(first.state).toMatchObject({
      domain: 'a.example.com',
      status: 'failing',
      failures: 1,
      pending: { orderUrl: 'https://ca/order/1' },
      lastError: { at: now.toISOString(), message: 'Connection refused', type: 'urn:ietf:params:acme:error:connection' },
      nextAttempt: '2030-01-01T00:01:00.000Z',
    });
    const second = failedState(first.state, 'a.example.com', { message: 'again' }, now, backoff, mid);
    expect(second.state.failures).toBe(2);
    expect(second.delayMs).toBe(120_000);
  });

  it('waits for Retry-After when it is longer than the backoff (rate limits)', () => {
    const limited = { message: 'too many certificates', type: 'urn:ietf:params:acme:error:rateLimited', status: 429, retryAfterMs: 3 * 3600_000 };
    expect(isRateLimited(limited)).toBe(true);
    const { state, delayMs } = failedState(undefined, 'a.example.com', limited, now, backoff, mid);
    expect(delayMs).toBe(3 * 3600_000);
    expect(state.nextAttempt).toBe('2030-01-01T03:00:00.000Z');
    // A shorter Retry-After does not shorten the backoff; an absurd one is capped at a week.
    expect(failedState(undefined, 'a', { message: 'x', retryAfterMs: 1000 }, now, backoff, mid).delayMs).toBe(60_000);
    expect(failedState(undefined, 'a', { message: 'x', retryAfterMs: 365 * DAY }, now, backoff, mid).delayMs).toBe(7 * DAY);
  });

  it('a success clears the failures, the error, the backoff and the pending order', () => {
    const failing = failedState(undefined, 'a.example.com', { message: 'x' }, now, backoff, mid).state;
    const issued = issuedState(
      { ...failing, pending: { orderUrl: 'u', startedAt: '', tokens: [], by: 'r' } },
      'a.example.com',
      new Date(now.getTime() + 90 * DAY),
      now,
    );
    expect(issued).toEqual({
      domain: 'a.example.com',
      status: 'valid',
      failures: 0,
      validUntil: '2030-04-01T00:00:00.000Z',
      issuedAt: now.toISOString(),
      updatedAt: now.toISOString(),
    });
  });
});

describe('decide', () => {
  const cert = (daysLeft: number) => ({ notAfter: new Date(now.getTime() + daysLeft * DAY), fingerprint: 'F' });
  const valid = (issuedDaysAgo: number): AcmeDomainState => ({
    domain: 'a',
    status: 'valid',
    failures: 0,
    issuedAt: new Date(now.getTime() - issuedDaysAgo * DAY).toISOString(),
    updatedAt: '',
  });

  it('orders at once when there is no certificate', () => {
    expect(decide(undefined, undefined, now, 30)).toEqual({ due: true, reason: 'no certificate yet' });
  });

  it('waits until renewDays before expiry, then renews', () => {
    expect(decide(valid(10), cert(80), now, 30)).toEqual({ due: false, reason: 'certificate valid', at: new Date(now.getTime() + 50 * DAY) });
    expect(decide(valid(70), cert(20), now, 30)).toEqual({ due: true, reason: 'certificate expires in 20 day(s), renewing (threshold 30)' });
    expect(decide(valid(100), cert(-1), now, 30)).toMatchObject({ due: true, reason: 'certificate expired' });
  });

  it('resumes a pending order', () => {
    const pending = pendingState(valid(70), 'a', { orderUrl: 'u', startedAt: '', tokens: [], by: 'r' }, now);
    expect(decide(pending, cert(80), now, 30)).toEqual({ due: true, reason: 'resuming a pending order' });
  });

  it('never orders before nextAttempt (backoff), and says why', () => {
    const failing = failedState(undefined, 'a', { message: 'the CA said no' }, now, backoff, mid).state;
    expect(decide(failing, undefined, now, 30)).toEqual({
      due: false,
      reason: 'backing off after 1 failure(s): the CA said no',
      at: new Date(now.getTime() + 60_000),
    });
    expect(decide(failing, undefined, new Date(now.getTime() + 60_000), 30)).toMatchObject({ due: true });
  });

  it('does not renew in a loop when renewDays is longer than certificates live', () => {
    const justIssued = valid(0);
    expect(decide(justIssued, cert(90), now, 9999)).toMatchObject({
      due: false,
      reason: expect.stringMatching(/renewed recently/),
      at: new Date(now.getTime() + DAY),
    });
    expect(decide(justIssued, cert(90), now, 9999, 0)).toMatchObject({ due: true });
    // An expired certificate is renewed whatever the interval.
    expect(decide(justIssued, cert(-1), now, 30)).toMatchObject({ due: true });
  });
});

describe('parseState / serializeState', () => {
  it('round-trips and refuses what is not a state for that domain', () => {
    const state = failedState(undefined, 'a.example.com', { message: 'x', status: 500 }, now, backoff, mid).state;
    expect(parseState(serializeState(state), 'a.example.com')).toEqual(state);
    expect(parseState(serializeState(state), 'b.example.com')).toBeUndefined();
    expect(parseState('not json', 'a.example.com')).toBeUndefined();
    expect(parseState(JSON.stringify({ domain: 'a.example.com', status: 'weird' }), 'a.example.com')).toBeUndefined();
    expect(parseState(JSON.stringify({ domain: 'a.example.com', status: 'valid', failures: -3 }), 'a.example.com')).toMatchObject({ failures: 0 });
    expect(parseState(undefined, 'a.example.com')).toBeUndefined();
  });
});
