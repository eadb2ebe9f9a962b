import { describe, expect, it } from 'vitest';
import { backoffDelayMs, failedState, nextStep, decide, planPass, type HeldCert, type PassInput } from '../../src/acme/schedule.js';
import { issuedState, type AcmeDomainState } from '../../src/acme/state.js';
import { Backoff } from '../../src/util/backoff.js';

// The ACME schedule as data: which domains start now, when the leader looks again (renewal due
// dates, the backoff after a failed order, Retry-After), and at most `concurrency` at once.

const DAY = 86_400_000;
const now = new Date('2030-01-01T00:00:00Z');
const backoff = { baseMs: 60_000, capMs: 6 * 3600_000 };
const mid = () => 0.5; // no jitter

const cert = (daysLeft: number): HeldCert => ({ notAfter: new Date(now.getTime() + daysLeft * DAY), fingerprint: 'F' });

function pass(overrides: Partial<PassInput>) {
  return planPass({
    domains: [],
    states: new Map(),
    certs: new Map(),
    running: new Set(),
    concurrency: 2,
    now,
    renewDays: 30,
    checkIntervalMs: 3600_000,
    random: mid,
    ...overrides,
  });
}

describe('planPass: renewal due dates', () => {
  it('orders what has no certificate, and looks again when the next certificate is due for renewal', () => {
    const issued = issuedState(undefined, 'old.example.com', cert(35).notAfter, new Date(now.getTime() - 55 * DAY));
    const plan = pass({
      domains: ['new.example.com', 'old.example.com'],
      states: new Map([['old.example.com', issued]]),
      certs: new Map([['old.example.com', cert(35)]]),
      checkIntervalMs: 30 * DAY,
    });
    expect(plan.start).toEqual([{ domain: 'new.example.com', reason: 'no certificate yet' }]);
    // 35 days left, renewed 30 days before expiry: due in 5 days (sooner than the 30-day look).
    expect(plan.nextAt).toBe(now.getTime() + 5 * DAY);
  });

  it('renews on the due date, not before; the hourly look bounds how late a change is noticed', () => {
    const certs = new Map([['a.example.com', cert(30)]]);
    const early = pass({ domains: ['a.example.com'], certs, now: new Date(now.getTime() - 1000) });
    expect(early.start).toEqual([]);
    expect(early.nextAt).toBe(now.getTime());
    const due = pass({ domains: ['a.example.com'], certs });
    expect(due.start).toEqual([{ domain: 'a.example.com', reason: 'certificate expires in 30 day(s), renewing (threshold 30)' }]);
    expect(due.nextAt).toBe(now.getTime() + 3600_000);
  });

  it('starts at most `concurrency` at once, counting those running, and skips those running', () => {
    const domains = ['a.example.com', 'b.example.com', 'c.example.com', 'd.example.com'];
    expect(pass({ domains }).start.map((s) => s.domain)).toEqual(['a.example.com', 'b.example.com']);
    expect(pass({ domains, running: new Set(['a.example.com']) }).start.map((s) => s.domain)).toEqual(['b.example.com']);
    expect(pass({ domains, running: new Set(['a.example.com', 'c.example.com']) }).start).toEqual([]);
  });
});

describe('planPass: backoff after a failed order', () => {
  it('waits for the next attempt the failure set, then orders again; each failure doubles the wait', () => {
    const domains = ['a.example.com'];
    let state: AcmeDomainState | undefined;
    const waits: number[] = [];
    let at = now;
    for (let failure = 1; failure <= 4; failure++) {
      state = failedState(state, 'a.example.com', { message: 'the CA said no' }, at, backoff, mid).state;
      const waiting = pass({ domains, states: new Map([['a.example.com', state]]), now: at });
      expect(waiting.start).toEqual([]);
      waits.push(waiting.nextAt - at.getTime());
      at = new Date(waiting.nextAt);
      expect(pass({ domains, states: new Map([['a.example.com', state]]), now: at }).start).toHaveLength(1);
    }
    expect(waits).toEqual([60_000, 120_000, 240_000, 480_000]);
    expect(nextStep(decide(state, undefined, now, 30), false)).toMatch(/^backing off after 4 failure\(s\): the CA said no; next look at /);
  });

  it('a Retry-After longer than the backoff sets the next attempt', () => {
    const { state } = failedState(undefined, 'a.example.com', { message: 'slow down', status: 429, retryAfterMs: 2 * 3600_000 }, now, backoff, mid);
    const states = new Map([['a.example.com', state]]);
    const plan = pass({ domains: ['a.example.com'], states, checkIntervalMs: DAY });
    expect(plan.start).toEqual([]);
    expect(plan.nextAt).toBe(now.getTime() + 2 * 3600_000);
    // The hourly look comes first, and finds it not due yet.
    expect(pass({ domains: ['a.example.com'], states }).nextAt).toBe(now.getTime() + 3600_000);
    expect(pass({ domains: ['a.example.com'], states, now: new Date(now.getTime() + 3600_000) }).start).toEqual([]);
  });

  it('the delays are the project backoff policy (util/backoff) with ±10% on top, capped', () => {
    const policy = new Backoff({ firstMs: backoff.baseMs, maxMs: backoff.capMs });
    const nominal = Array.from({ length: 12 }, () => policy.next());
    expect(nominal.map((_, i) => backoffDelayMs(i + 1, backoff, mid))).toEqual(nominal);
    expect(backoffDelayMs(3, backoff, () => 0)).toBe(Math.round(nominal[2]! * 0.9));
    expect(backoffDelayMs(50, backoff, () => 0.999999)).toBe(backoff.capMs);
  });
});
