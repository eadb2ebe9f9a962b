import { describe, expect, it } from 'vitest';
import { healthOf } from '../../src/admin/status.js';

// /healthz (and the image's HEALTHCHECK, and edgelb_up): 200 only while HAProxy serves.

function inputs(haproxy: { running: boolean; isStarting: boolean }) {
  return {
    controller: { status: () => ({ lastApply: { action: 'started', at: '2026-01-01T00:00:00Z', durationMs: 1 } }) } as never,
    haproxy: { ...haproxy, pid: haproxy.running ? 7 : undefined, restartCount: 0 },
    etcd: { status: () => ({ failure: undefined }) } as never,
  };
}

describe('healthOf', () => {
  it('is unavailable while a spawned HAProxy has no worker yet: nothing listens on the ports', () => {
    expect(healthOf(inputs({ running: true, isStarting: true }))).toEqual({
      status: 'unavailable',
      reason: 'HAProxy is starting: no worker serves the ports yet',
    });
  });

  it('is ok once the start is over', () => {
    expect(healthOf(inputs({ running: true, isStarting: false }))).toEqual({ status: 'ok', reason: null });
  });

  it('is unavailable with no HAProxy at all', () => {
    expect(healthOf(inputs({ running: false, isStarting: false })).status).toBe('unavailable');
  });
});
