import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ProbeCheck, ProbeResult } from '../../src/haproxy/health-probe.js';
import type { HaproxyRuntime } from '../../src/haproxy/runtime.js';
import type { ServerSpec } from '../../src/plan/server-plan.js';
import { ServerProver } from '../../src/haproxy/server-prover.js';
import { ServerUpdater } from '../../src/haproxy/server-updater.js';
import type { HealthCheck } from '../../src/model/health-check.js';
import { createLogger } from '../../src/log.js';

const ARGS = 'check inter 2000ms fastinter 250ms rise 2 fall 3 weight 100';
const line = (name: string, host: string, port = 80): ServerSpec => ({
  service: 'http:web',
  proxy: 'http-web',
  name,
  host,
  port,
  address: `${host}:${port}`,
  args: ARGS,
  weight: 100,
});
const connect: HealthCheck = { kind: 'connect', port: undefined };

function setUp(answers: Record<string, ProbeResult[]>) {
  const commands: string[] = [];
  const runtime = {
    raw: async (command: string) => {
      commands.push(command);
      return '';
    },
  } as unknown as HaproxyRuntime;
  const probed: string[] = [];
  // Keyed by the address the check connects to: health_check_port when set.
  const probe = async (target: { host: string; port: number }, check: ProbeCheck): Promise<ProbeResult> => {
    const key = `${target.host}:${check.port ?? target.port}`;
    probed.push(key);
    return answers[key]?.shift() ?? { ok: false, reason: 'ECONNREFUSED' };
  };
  const logger = createLogger('silent', false);
  const prover = new ServerProver({ probe, logger, timeoutMs: 1000, windowMs: 4000 });
  const updater = new ServerUpdater(runtime, logger, 30_000, prover);
  return { commands, probed, updater };
}

/** The servers of a config that has web-1 and web-2 where the moves below send them. */
const everywhere = [
  { proxy: 'http-web', name: 'web-1', host: '10.0.0.9', port: 8080, checkPort: undefined, check: connect, weight: 100, ssl: false },
  { proxy: 'http-web', name: 'web-1', host: '10.0.0.9', port: 80, checkPort: undefined, check: connect, weight: 100, ssl: false },
  { proxy: 'http-web', name: 'web-2', host: '10.0.0.8', port: 80, checkPort: undefined, check: connect, weight: 100, ssl: false },
];

describe('ServerUpdater with the first probe', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('adds a server held down, then puts it in service the moment the probe passes', async () => {
    const { commands, updater } = setUp({ '10.0.0.2:80': [{ ok: true }] });
    await updater.apply({ add: [line('web-2', '10.0.0.2')], remove: [], readdress: [], reweight: [] }, () => connect);
    await vi.advanceTimersByTimeAsync(0);
    expect(commands).toEqual([
      `add server http-web/web-2 10.0.0.2:80 ${ARGS}; set server http-web/web-2 weight 0; enable server http-web/web-2; ` +
        'set server http-web/web-2 health down; enable health http-web/web-2; set server http-web/web-2 weight 100%',
      'set server http-web/web-2 health up',
    ]);
  });

  it("leaves an instance that fails the probe down: HAProxy's checks decide", async () => {
    const { commands, probed, updater } = setUp({});
    await updater.apply({ add: [line('web-2', '10.0.0.2')], remove: [], readdress: [], reweight: [] }, () => connect);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(probed.length).toBeGreaterThan(3);
    expect(commands).toHaveLength(1);
    expect(commands.join('\n')).not.toContain('health up');
  });

  it('a move whose weight changed too ends with the new weight once proven', async () => {
    const { commands, updater } = setUp({ '10.0.0.9:8080': [{ ok: true }] });
    await updater.apply({ add: [], remove: [], readdress: [{ ...line('web-1', '10.0.0.9', 8080), weight: 30 }], reweight: [] }, () => connect);
    await vi.advanceTimersByTimeAsync(30);
    expect(commands).toEqual(['set server http-web/web-1 addr 10.0.0.9 port 8080; set server http-web/web-1 weight 30; set server http-web/web-1 health up']);
  });

  it('moves a server only once its new address has passed the probe, and without taking it down', async () => {
    const { commands, updater } = setUp({ '10.0.0.9:8080': [{ ok: false, reason: 'ECONNREFUSED' }, { ok: true }] });
    await updater.apply({ add: [], remove: [], readdress: [line('web-1', '10.0.0.9', 8080)], reweight: [] }, () => connect);
    await vi.advanceTimersByTimeAsync(0);
    // Still at its old address while the new one does not answer.
    expect(commands).toEqual([]);
    await vi.advanceTimersByTimeAsync(30);
    expect(commands).toEqual(['set server http-web/web-1 addr 10.0.0.9 port 8080; set server http-web/web-1 weight 100; set server http-web/web-1 health up']);
    expect(updater.pendingMoves(everywhere).size).toBe(0);
  });

  it("moves a server whose new address never passes after the window, held down for HAProxy's checks", async () => {
    const { commands, updater } = setUp({});
    await updater.apply({ add: [], remove: [], readdress: [line('web-1', '10.0.0.9')], reweight: [] }, () => connect);
    await vi.advanceTimersByTimeAsync(3000);
    expect(commands).toEqual([]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(commands).toEqual([
      'set server http-web/web-1 weight 0; set server http-web/web-1 addr 10.0.0.9 port 80; set server http-web/web-1 health down; set server http-web/web-1 weight 100',
    ]);
  });

  it('a move that gives up after a reweight ends with the new weight, not the one the move was planned with', async () => {
    const { commands, updater } = setUp({});
    await updater.apply({ add: [], remove: [], readdress: [line('web-1', '10.0.0.9')], reweight: [] }, () => connect);
    await updater.apply({ add: [], remove: [], readdress: [], reweight: [{ ...line('web-1', '10.0.0.9'), weight: 0 }] }, () => connect);
    expect(commands).toEqual(['set server http-web/web-1 weight 0']);
    await vi.advanceTimersByTimeAsync(5000);
    expect(commands.slice(1)).toEqual([
      'set server http-web/web-1 weight 0; set server http-web/web-1 addr 10.0.0.9 port 80; set server http-web/web-1 health down; set server http-web/web-1 weight 0',
    ]);
  });

  it("moves at once, held down, when only HAProxy can run the service's check", async () => {
    const { commands, probed, updater } = setUp({});
    await updater.apply({ add: [], remove: [], readdress: [line('web-1', '10.0.0.9')], reweight: [] }, () => ({ kind: 'haproxy-only', reason: 'custom' }));
    expect(commands).toHaveLength(1);
    expect(commands[0]).toContain('addr 10.0.0.9 port 80');
    expect(commands[0]).toContain('health down');
    await vi.advanceTimersByTimeAsync(5000);
    expect(probed).toEqual([]);
  });

  it('forgets a pending move when the server is removed', async () => {
    const { commands, updater } = setUp({ '10.0.0.9:80': [{ ok: false, reason: 'ECONNREFUSED' }, { ok: true }] });
    await updater.apply({ add: [], remove: [], readdress: [line('web-1', '10.0.0.9')], reweight: [] }, () => connect);
    await vi.advanceTimersByTimeAsync(0);
    await updater.apply({ add: [], remove: [line('web-1', '10.0.0.9')], readdress: [], reweight: [] }, () => connect);
    await vi.advanceTimersByTimeAsync(5000);
    expect(commands.filter((c) => c.includes('addr') || c.includes('health up'))).toEqual([]);
    updater.stop();
  });

  it('puts servers a start or reload brought up down in service as each passes', async () => {
    const { commands, updater } = setUp({ '10.0.0.1:80': [{ ok: true }], '10.0.0.2:9000': [{ ok: true }] });
    updater.proveStarted(
      [
        { proxy: 'http-web', name: 'web-1', host: '10.0.0.1', port: 80, checkPort: undefined, check: connect, weight: 100, ssl: false },
        {
          proxy: 'http-web',
          name: 'web-2',
          host: '10.0.0.2',
          port: 80,
          checkPort: 9000,
          check: { kind: 'http', path: '/health', port: 9000 },
          weight: 100,
          ssl: false,
        },
        { proxy: 'http-web', name: 'web-3', host: '10.0.0.3', port: 80, checkPort: undefined, check: connect, weight: 100, ssl: false },
      ],
      false,
    );
    await vi.advanceTimersByTimeAsync(5000);
    // Proven in the same turn: one line, one connection.
    expect(commands).toEqual(['set server http-web/web-1 health up; set server http-web/web-2 health up']);
  });

  it('holds the result of a probe that passes during a reload, and sends it to the new worker only if it still has that server there', async () => {
    const { commands, updater } = setUp({ '10.0.0.2:80': [{ ok: true }], '10.0.0.3:80': [{ ok: true }] });
    updater.beginCommit();
    await updater.apply({ add: [line('web-2', '10.0.0.2'), line('web-3', '10.0.0.3')], remove: [], readdress: [], reweight: [] }, () => connect);
    await vi.advanceTimersByTimeAsync(10);
    expect(commands.filter((c) => c.includes('health up'))).toEqual([]);
    // The next worker has web-2 where it was proven; web-3 moved (it starts down there and is probed again).
    updater.endCommit([
      { proxy: 'http-web', name: 'web-2', host: '10.0.0.2', port: 80, checkPort: undefined, check: connect, weight: 100, ssl: false },
      { proxy: 'http-web', name: 'web-3', host: '10.0.0.33', port: 80, checkPort: undefined, check: connect, weight: 100, ssl: false },
    ]);
    await vi.advanceTimersByTimeAsync(0);
    expect(commands.filter((c) => c.includes('health up'))).toEqual(['set server http-web/web-2 health up']);
  });

  it('drops a pending move across a reload whose config no longer has the server at that address, and keeps one it still has', async () => {
    const { commands, updater } = setUp({
      '10.0.0.9:80': [{ ok: false, reason: 'ECONNREFUSED' }, { ok: true }],
      '10.0.0.8:80': [{ ok: false, reason: 'ECONNREFUSED' }, { ok: true }],
    });
    await updater.apply({ add: [], remove: [], readdress: [line('web-1', '10.0.0.9'), line('web-2', '10.0.0.8')], reweight: [] }, () => connect);
    await vi.advanceTimersByTimeAsync(0);
    expect([...updater.pendingMoves(everywhere)].sort()).toEqual(['http-web/web-1', 'http-web/web-2']);
    // A config that sends web-1 elsewhere again does not carry it at its old address: it reloads it there.
    expect([...updater.pendingMoves([{ ...everywhere[1]!, host: '10.0.0.7' }, everywhere[2]!])]).toEqual(['http-web/web-2']);
    updater.beginCommit();
    // web-1 is now given by host name (not in the list); web-2 is still meant for 10.0.0.8.
    updater.endCommit([{ proxy: 'http-web', name: 'web-2', host: '10.0.0.8', port: 80, checkPort: undefined, check: connect, weight: 100, ssl: false }]);
    expect([...updater.pendingMoves(everywhere)]).toEqual(['http-web/web-2']);
    await vi.advanceTimersByTimeAsync(100);
    expect(commands).toEqual(['set server http-web/web-2 addr 10.0.0.8 port 80; set server http-web/web-2 weight 100; set server http-web/web-2 health up']);
  });
});
