import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RestartSchedule } from '../../src/haproxy/process.js';

// The supervisor's restarts of a dead HAProxy, with fake timers and a fake start: each attempt
// records when it ran and answers as the test says (HAProxy started, or failed to start).

describe('RestartSchedule', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function fakeStarts(results: boolean[]) {
    const started = Date.now();
    const at: number[] = [];
    const reasons: string[] = [];
    const schedule = new RestartSchedule(async (reason) => {
      at.push(Date.now() - started);
      reasons.push(reason);
      return results.shift() ?? true;
    });
    return { schedule, at, reasons };
  }

  it('tries 50 ms after the crash, then backs off (doubling, at most 5 s) while starts fail, and starts over after a success', async () => {
    const { schedule, at, reasons } = fakeStarts([false, false, false, false, false, false, false, false, true, true]);
    schedule.schedule('code 137');
    await vi.advanceTimersByTimeAsync(49);
    expect(at).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(at).toEqual([50]);
    await vi.advanceTimersByTimeAsync(60_000);
    // 50, +100, +200, +400, +800, +1600, +3200, +5000 (capped), +5000.
    expect(at).toEqual([50, 150, 350, 750, 1550, 3150, 6350, 11_350, 16_350]);
    expect(new Set(reasons)).toEqual(new Set(['code 137']));

    // HAProxy ran again; the next crash is retried after 50 ms again.
    schedule.schedule('SIGKILL');
    await vi.advanceTimersByTimeAsync(50);
    expect(at.slice(9)).toEqual([60_100]);
    expect(reasons.at(-1)).toBe('SIGKILL');
  });

  it('does not try once cancelled (HAProxy stopped or started by an apply)', async () => {
    const { schedule, at } = fakeStarts([false]);
    schedule.schedule('code 1');
    schedule.cancel();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(at).toEqual([]);
  });
});
