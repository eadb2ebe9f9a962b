import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ServerUpdater } from '../../src/haproxy/server-updater.js';
import type { ServerPlan } from '../../src/plan/server-plan.js';
import { fakeApplier, fakeController } from '../support/fake-controller.js';

// The controller's choice between the runtime API and a reload, with a fake applier and a fake
// server updater (the real ones are tested against HAProxy in test/integration): what it runs,
// what it falls back to, and what it records.

function setUp(options: { refuseRuntime?: boolean; commitFailsAfterMs?: number } = {}) {
  const events: string[] = [];
  const plans: ServerPlan[] = [];
  // The applier's events as this test names them.
  const named = { started: 'start', reloaded: 'reload', runtime: 'adopt' } as const;
  const applier = fakeApplier((event) => events.push(named[event]), { commitFailsAfterMs: options.commitFailsAfterMs });
  const servers = {
    apply: async (plan: ServerPlan) => {
      plans.push(plan);
      if (options.refuseRuntime) throw new Error('HAProxy refused: add server');
      events.push('runtime');
      return plan.add.length + plan.remove.length + plan.readdress.length;
    },
    beginCommit: async () => undefined,
    endCommit: () => undefined,
    forget: () => undefined,
    pendingMoves: () => new Set<string>(),
    proveStarted: () => undefined,
  } as unknown as ServerUpdater;
  const failures: Error[] = [];
  const { controller, offer } = fakeController({ applier, servers, onApplyFailed: (error) => failures.push(error) });
  const apply = async (entries: Record<string, string>) => {
    offer(entries);
    // Past the quiet time and any slow fake commit.
    await vi.advanceTimersByTimeAsync(100);
    await controller.whenIdle();
  };
  return { events, plans, controller, apply, failures };
}

const web = { 'services/web/virtual_hosts': 'web.test', 'services/web/upstreams/web-1': '10.0.0.1:80' };
const withTwo = { ...web, 'services/web/upstreams/web-2': '10.0.0.2:80' };

describe('Controller: runtime API or reload', () => {
  beforeEach(() => vi.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] }));
  afterEach(() => vi.useRealTimers());

  it('starts, then adds an instance through the runtime API and records it as a runtime apply', async () => {
    const { events, plans, controller, apply } = setUp();
    await apply(web);
    await apply(withTwo);
    expect(events).toEqual(['start', 'runtime', 'adopt']);
    expect(plans[0]!.add.map((s) => `${s.proxy}/${s.name} ${s.address}`)).toEqual(['http-web/web-2 10.0.0.2:80']);
    const { lastApply, counters } = controller.status();
    expect(lastApply).toMatchObject({ action: 'runtime', changes: { changed: ['http:web'] } });
    // From the snapshot's arrival to the apply's end: at least the 25 ms quiet time of the coalescer.
    expect(lastApply!.sinceChangeMs).toBeGreaterThanOrEqual(25);
    expect(lastApply!.sinceChangeMs).toBeLessThan(100);
    expect(counters).toMatchObject({ starts: 1, runtimeUpdates: 1, reloads: 0 });
    controller.stop();
  });

  it('falls back to a reload when the runtime API refuses, and says why', async () => {
    const { events, controller, apply } = setUp({ refuseRuntime: true });
    await apply(web);
    await apply(withTwo);
    expect(events).toEqual(['start', 'reload']);
    expect(controller.status().lastApply).toMatchObject({ action: 'reloaded', reason: 'the runtime API refused a change' });
    controller.stop();
  });

  it("reloads for a route change, with the plan's reason, and does nothing for the same entries", async () => {
    const { events, controller, apply } = setUp();
    await apply(web);
    await apply({ ...web, 'services/web/virtual_hosts': 'other.test' });
    expect(controller.status().lastApply).toMatchObject({ action: 'reloaded', reason: 'routes or settings of http:web changed' });
    await apply({ ...web, 'services/web/virtual_hosts': 'other.test' });
    expect(events).toEqual(['start', 'reload']);
    expect(controller.status().counters).toMatchObject({ unchanged: 1 });
    controller.stop();
  });

  it('records a failed apply with how long it took and hands the error (with its code) to the caller', async () => {
    const { controller, apply, failures } = setUp({ commitFailsAfterMs: 40 });
    await apply(web);
    await apply({ ...web, 'services/web/virtual_hosts': 'other.test' });
    const { lastApply, counters } = controller.status();
    expect(lastApply).toMatchObject({ action: 'failed', error: 'ENOSPC: no space left on device' });
    expect(lastApply!.durationMs).toBeGreaterThanOrEqual(40);
    expect(counters.failures).toBe(1);
    expect(failures.map((e) => e.message)).toEqual(['ENOSPC: no space left on device']);
    controller.stop();
  });
});
