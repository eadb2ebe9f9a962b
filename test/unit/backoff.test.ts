import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/util/backoff.js';

describe('Backoff', () => {
  it('doubles from the first delay up to the cap, and starts over after a reset', () => {
    const backoff = new Backoff({ firstMs: 100, maxMs: 1000 });
    expect([1, 2, 3, 4, 5, 6].map(() => backoff.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    backoff.reset();
    expect(backoff.next()).toBe(100);
  });

  it('with jitter, keeps each delay within the upper half of the exponential one', () => {
    const backoff = new Backoff({ firstMs: 100, maxMs: 1000, jitter: true });
    const delays = Array.from({ length: 8 }, () => backoff.next());
    const ceilings = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
    delays.forEach((d, i) => {
      expect(d).toBeLessThanOrEqual(ceilings[i]!);
      expect(d).toBeGreaterThanOrEqual(ceilings[i]! / 2 - 1);
    });
  });
});
