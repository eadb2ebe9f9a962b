import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ProbeResult } from '../../src/haproxy/health-probe.js';
import { ServerProver, type ProofRequest } from '../../src/haproxy/server-prover.js';
import { createLogger } from '../../src/log.js';

/** A probe whose answers the test gives, per attempt, in order. */
function scriptedProbe(answers: ProbeResult[]) {
  const calls: string[] = [];
  const probe = vi.fn(async (target: { host: string; port: number }) => {
    calls.push(`${target.host}:${target.port}`);
    return answers.shift() ?? { ok: false as const, reason: 'ECONNREFUSED' };
  });
  return { probe, calls };
}

const refused: ProbeResult = { ok: false, reason: 'ECONNREFUSED' };
const passed: ProbeResult = { ok: true };

function request(events: string[], overrides: Partial<ProofRequest> = {}): ProofRequest {
  return {
    id: 'http-web/web-1',
    target: { host: '10.0.0.1', port: 80 },
    check: { kind: 'connect', port: undefined },
    retry: true,
    onProven: async () => void events.push('proven'),
    onGaveUp: async (reason) => void events.push(`gave up: ${reason}`),
    ...overrides,
  };
}

describe('ServerProver', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('puts a server in service as soon as its first probe passes', async () => {
    const { probe } = scriptedProbe([passed]);
    const prover = new ServerProver({ probe, logger: createLogger('silent', false), timeoutMs: 1000, windowMs: 4000 });
    const events: string[] = [];
    prover.prove(request(events));
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual(['proven']);
    expect(prover.counters()).toEqual({ proven: 1, gaveUp: 0, pending: 0 });
  });

  it('retries a starting instance quickly, then a second apart, until the window ends, then gives up', async () => {
    const { probe } = scriptedProbe([]);
    const prover = new ServerProver({ probe, logger: createLogger('silent', false), timeoutMs: 1000, windowMs: 4000 });
    const events: string[] = [];
    prover.prove(request(events));
    await vi.advanceTimersByTimeAsync(0);
    expect(probe).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(25 + 50 + 100);
    expect(probe).toHaveBeenCalledTimes(4);
    await vi.advanceTimersByTimeAsync(4000);
    // 0, 25, 75, 175, 375, 775, 1575, 2575, 3575: the next (4575) is past the window.
    expect(probe).toHaveBeenCalledTimes(9);
    expect(events).toEqual(['gave up: ECONNREFUSED']);
    expect(prover.counters()).toEqual({ proven: 0, gaveUp: 1, pending: 0 });
  });

  it('passes on a later attempt: the instance was still binding its port', async () => {
    const { probe } = scriptedProbe([refused, refused, passed]);
    const prover = new ServerProver({ probe, logger: createLogger('silent', false), timeoutMs: 1000, windowMs: 4000 });
    const events: string[] = [];
    prover.prove(request(events));
    await vi.advanceTimersByTimeAsync(100);
    expect(events).toEqual(['proven']);
    expect(probe).toHaveBeenCalledTimes(3);
  });

  it('tries once when asked for no retries', async () => {
    const { probe } = scriptedProbe([]);
    const prover = new ServerProver({ probe, logger: createLogger('silent', false), timeoutMs: 1000, windowMs: 4000 });
    const events: string[] = [];
    prover.prove(request(events, { retry: false }));
    await vi.advanceTimersByTimeAsync(5000);
    expect(probe).toHaveBeenCalledTimes(1);
    expect(events).toEqual(['gave up: ECONNREFUSED']);
  });

  it('drops the result of a probe for a server that was cancelled or asked again for another address meanwhile', async () => {
    let release!: (result: ProbeResult) => void;
    const probe = vi.fn(() => new Promise<ProbeResult>((resolve) => (release = resolve)));
    const prover = new ServerProver({ probe, logger: createLogger('silent', false), timeoutMs: 1000, windowMs: 4000 });
    const events: string[] = [];
    prover.prove(request(events, { onProven: async () => void events.push('old address proven') }));
    await vi.advanceTimersByTimeAsync(0);
    const first = release;
    prover.prove(request(events, { target: { host: '10.0.0.9', port: 80 }, onProven: async () => void events.push('new address proven') }));
    await vi.advanceTimersByTimeAsync(0);
    first({ ok: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual([]);
    release({ ok: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual(['new address proven']);

    prover.prove(request(events, { onProven: async () => void events.push('cancelled one proven') }));
    await vi.advanceTimersByTimeAsync(0);
    prover.cancel('http-web/web-1');
    release({ ok: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual(['new address proven']);
    expect(prover.counters().pending).toBe(0);
  });

  it('keeps at most `concurrency` probes in flight; the rest wait in line', async () => {
    const releases: (() => void)[] = [];
    const probe = vi.fn(() => new Promise<ProbeResult>((resolve) => releases.push(() => resolve({ ok: true }))));
    const prover = new ServerProver({ probe, logger: createLogger('silent', false), timeoutMs: 1000, windowMs: 4000, concurrency: 2 });
    const events: string[] = [];
    for (const n of [1, 2, 3, 4, 5]) prover.prove(request(events, { id: `http-web/web-${n}`, onProven: async () => void events.push(`web-${n}`) }));
    await vi.advanceTimersByTimeAsync(0);
    expect(probe).toHaveBeenCalledTimes(2);
    releases.shift()!();
    await vi.advanceTimersByTimeAsync(0);
    expect(probe).toHaveBeenCalledTimes(3);
    while (releases.length > 0) {
      releases.shift()!();
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(events.sort()).toEqual(['web-1', 'web-2', 'web-3', 'web-4', 'web-5']);
  });

  it('keeps working when putting a server in service fails', async () => {
    const { probe } = scriptedProbe([passed, passed]);
    const prover = new ServerProver({ probe, logger: createLogger('silent', false), timeoutMs: 1000, windowMs: 4000 });
    const events: string[] = [];
    prover.prove(
      request(events, {
        onProven: async () => {
          throw new Error('No such server.');
        },
      }),
    );
    prover.prove(request(events, { id: 'http-web/web-2' }));
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual(['proven']);
    expect(prover.counters()).toEqual({ proven: 2, gaveUp: 0, pending: 0 });
  });
});
