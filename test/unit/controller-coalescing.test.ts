import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Coalescer } from '../../src/controller/coalescer.js';
import { fakeApplier, fakeController } from '../support/fake-controller.js';

// The controller's coalescing, with a fake applier and fake timers: a burst of snapshots becomes
// one apply once the burst has been quiet for 25 ms, but no change waits longer than 500 ms.

function setUp() {
  const applies: { at: number; how: string; text: string }[] = [];
  const applier = fakeApplier((how, config) => applies.push({ at: Date.now(), how, text: config.text }));
  const { controller, offer } = fakeController({ applier });
  return { applies, controller, offer };
}

const service = (hosts: string) => ({ 'services/web/virtual_hosts': hosts, 'services/web/upstreams/web-1': '10.0.0.1:80' });

describe('Coalescer', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it('is idle after a task run alone while a change waits for its input to be ready', async () => {
    let ready = false;
    const runs: string[] = [];
    const coalescer = new Coalescer(async () => void runs.push('task'), { ready: () => ready });
    coalescer.changed(); // e.g. certificates offered before etcd answered
    coalescer.runAlone(async () => void runs.push('alone'));
    const idle = vi.fn();
    void coalescer.whenIdle().then(idle);
    await vi.advanceTimersByTimeAsync(100);
    expect(runs).toEqual(['alone']);
    expect(idle).toHaveBeenCalled();
    ready = true;
    coalescer.changed();
    await vi.advanceTimersByTimeAsync(25);
    await coalescer.whenIdle();
    expect(runs).toEqual(['alone', 'task']);
    coalescer.stop();
  });
});

describe('Controller coalescing', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it('applies a burst once, 25 ms after its last snapshot, with the newest snapshot', async () => {
    const { applies, controller, offer } = setUp();
    for (let i = 0; i < 5; i++) {
      offer(service(`v${i}.test`));
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(applies).toEqual([]);
    await vi.advanceTimersByTimeAsync(15);
    await controller.whenIdle();
    expect(applies).toHaveLength(1);
    expect(applies[0]).toMatchObject({ how: 'started', at: 65 });
    expect(applies[0]!.text).toContain('v4.test');
    expect(applies[0]!.text).not.toContain('v3.test');
    controller.stop();
  });

  it('never lets a change wait longer than 500 ms, however long the burst', async () => {
    const { applies, controller, offer } = setUp();
    for (let i = 0; i < 60; i++) {
      offer(service(`v${i}.test`));
      await vi.advanceTimersByTimeAsync(20);
    }
    await vi.advanceTimersByTimeAsync(100);
    await controller.whenIdle();
    // A snapshot every 20 ms for 1.2 s, never 25 ms quiet: an apply at most 500 ms after the
    // first change it carries, then the newest one 25 ms after the burst ends.
    const times = applies.map((a) => a.at);
    expect(times[0]).toBe(500);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(520);
    expect(times.at(-1)).toBe(1180 + 25);
    expect(applies.at(-1)!.text).toContain('v59.test');
    expect(applies.length).toBeLessThanOrEqual(4);
    controller.stop();
  });

  it('applies what arrived during an apply right after it, without waiting again', async () => {
    const { applies, controller, offer } = setUp();
    offer(service('first.test'));
    await vi.advanceTimersByTimeAsync(25);
    await controller.whenIdle();
    offer(service('second.test'));
    await vi.advanceTimersByTimeAsync(25);
    await controller.whenIdle();
    expect(applies.map((a) => a.how)).toEqual(['started', 'reloaded']);
    expect(applies[1]!.text).toContain('second.test');
    controller.stop();
  });
});
