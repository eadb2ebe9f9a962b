import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HaproxyRuntime } from '../../src/haproxy/runtime.js';
import type { ServerSpec } from '../../src/plan/server-plan.js';
import { ServerUpdater } from '../../src/haproxy/server-updater.js';
import { createLogger } from '../../src/log.js';

// The exact runtime commands of a removal: maintenance, then `del server` every 250 ms until
// HAProxy deletes it (no connection left), and after the drain timeout, its sessions closed.

const ARGS = 'check inter 2000ms fastinter 250ms rise 2 fall 3 weight 100';
const line = (name: string, host: string): ServerSpec => ({
  service: 'http:web',
  proxy: 'http-web',
  name,
  host,
  port: 80,
  address: `${host}:80`,
  args: ARGS,
  weight: 100,
});

/** A runtime whose `del server` answers "busy" until `idle` is set. */
function fakeRuntime() {
  const commands: string[] = [];
  const state = { idle: false };
  const runtime = {
    raw: async (command: string) => {
      commands.push(command);
      if (command.startsWith('del server')) return state.idle ? 'Server deleted.\n' : 'Server still has connections attached to it, cannot remove it.\n';
      return '';
    },
  } as unknown as HaproxyRuntime;
  return { commands, state, runtime };
}

describe('ServerUpdater drains a removed instance', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('puts it in maintenance, then deletes it once it has no connection left', async () => {
    const { commands, state, runtime } = fakeRuntime();
    const updater = new ServerUpdater(runtime, createLogger('silent', false), 30_000);
    await updater.apply({ add: [], remove: [line('web-2', '10.0.0.2')], readdress: [], reweight: [] });
    expect(commands).toEqual(['set server http-web/web-2 state maint']);
    await vi.advanceTimersByTimeAsync(250);
    expect(commands.slice(1)).toEqual(['del server http-web/web-2']);
    await vi.advanceTimersByTimeAsync(500);
    expect(commands.filter((c) => c === 'del server http-web/web-2')).toHaveLength(3);
    state.idle = true;
    await vi.advanceTimersByTimeAsync(250);
    const polls = commands.length;
    await vi.advanceTimersByTimeAsync(2000);
    // Deleted: no more polling.
    expect(commands).toHaveLength(polls);
    updater.stop();
  });

  it('closes what is left after the drain timeout, once, and keeps polling until it is gone', async () => {
    const { commands, state, runtime } = fakeRuntime();
    const updater = new ServerUpdater(runtime, createLogger('silent', false), 1000);
    await updater.apply({ add: [], remove: [line('web-2', '10.0.0.2')], readdress: [], reweight: [] });
    await vi.advanceTimersByTimeAsync(900);
    expect(commands).not.toContain('shutdown sessions server http-web/web-2');
    await vi.advanceTimersByTimeAsync(600);
    expect(commands.filter((c) => c.startsWith('shutdown sessions'))).toEqual(['shutdown sessions server http-web/web-2']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(commands.filter((c) => c.startsWith('shutdown sessions'))).toHaveLength(1);
    state.idle = true;
    await vi.advanceTimersByTimeAsync(250);
    expect(commands.at(-1)).toBe('del server http-web/web-2');
    updater.stop();
  });

  it('returns an instance written back before its drain ended to service, held down for its checks', async () => {
    const { commands, runtime } = fakeRuntime();
    const updater = new ServerUpdater(runtime, createLogger('silent', false), 30_000);
    await updater.apply({ add: [], remove: [line('web-2', '10.0.0.2')], readdress: [], reweight: [] });
    await updater.apply({ add: [line('web-2', '10.0.0.2')], remove: [], readdress: [], reweight: [] });
    expect(commands).toEqual([
      'set server http-web/web-2 state maint',
      'set server http-web/web-2 weight 0; set server http-web/web-2 addr 10.0.0.2 port 80; set server http-web/web-2 state ready; ' +
        'set server http-web/web-2 health down; set server http-web/web-2 weight 100',
    ]);
    // No longer draining: no `del server` polls.
    await vi.advanceTimersByTimeAsync(1000);
    expect(commands).toHaveLength(2);
    updater.stop();
  });

  it('stops polling after a reload: the new worker never had the draining server', async () => {
    const { commands, runtime } = fakeRuntime();
    const updater = new ServerUpdater(runtime, createLogger('silent', false), 30_000);
    await updater.apply({ add: [], remove: [line('web-2', '10.0.0.2')], readdress: [], reweight: [] });
    updater.forget();
    await vi.advanceTimersByTimeAsync(2000);
    expect(commands).toEqual(['set server http-web/web-2 state maint']);
    updater.stop();
  });
});
