import { rm } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import { startTestEdgelb, type TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import {
  closeBackends,
  deleteKey,
  deletePrefix,
  expectBackendSet,
  expectNoRoute,
  expectRoute,
  expectUnavailable,
  lbReady,
  logsWithMsg,
  putKeys,
  settled,
  startBackends,
  startLbWith,
} from '../support/lb.js';
import { waitFor } from '../support/wait.js';

// Changes in etcd reaching live traffic: updates, deletions, bursts, no-op writes, restarts.

let etcd: EtcdServer;
let b: Record<'a' | 'b' | 'c', Backend>;
const running: TestEdgelb[] = [];
const tempDirs: string[] = [];

async function lbWith(entries: Record<string, string> = {}): Promise<TestEdgelb> {
  const lb = await startLbWith(etcd, entries);
  running.push(lb);
  return lb;
}

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('a', 'b', 'c');
});

afterEach(async () => {
  for (const lb of running.splice(0)) await lb.stopAll();
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

afterAll(async () => {
  await closeBackends(b);
  await etcd?.stop();
});

describe('updates and deletions', () => {
  it('adding an upstream, changing an address and removing upstreams and services take effect', async () => {
    const lb = await lbWith({
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/one': b.a.address,
      'services/other/virtual_hosts': 'other.test',
      'services/other/upstreams/one': b.c.address,
    });
    await expectBackendSet(lb, '/', 'web.test', ['a']);

    // Add an upstream: round robin now uses both.
    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/two': b.b.address }));
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);

    // Change an address: instance "one" moves from backend a to backend c.
    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/one': b.c.address }));
    await expectBackendSet(lb, '/', 'web.test', ['b', 'c']);

    // Delete one upstream: only the other is left.
    await settled(lb, await deleteKey(etcd, lb, 'services/web/upstreams/two'));
    await expectBackendSet(lb, '/', 'web.test', ['c']);

    // Delete the last upstream: the route stays, answering "service unavailable".
    await settled(lb, await deleteKey(etcd, lb, 'services/web/upstreams/one'));
    await expectUnavailable(lb, '/', 'web.test');

    // Delete the whole service: no route at all any more.
    await settled(lb, await deletePrefix(etcd, lb, 'services/web/'));
    await expectNoRoute(lb, '/', 'web.test');
    expect(lb.controller.status().state?.http.map((s) => s.name)).toEqual(['other']);

    // The untouched service served throughout and still does.
    await expectRoute(lb, '/still', 'other.test', 'c', '/still');
    expect(lb.controller.status().counters.failures).toBe(0);
  });

  it('changing virtual_hosts and virtual_path moves the route', async () => {
    const lb = await lbWith({
      'services/web/virtual_hosts': 'old.test',
      'services/web/upstreams/one': b.a.address,
    });
    await expectRoute(lb, '/x', 'old.test', 'a', '/x');

    await settled(lb, await putKeys(etcd, lb, { 'services/web/virtual_hosts': 'new.test' }));
    await expectRoute(lb, '/x', 'new.test', 'a', '/x');
    await expectNoRoute(lb, '/x', 'old.test');

    await settled(lb, await putKeys(etcd, lb, { 'services/web/virtual_path': '/v1' }));
    await expectRoute(lb, '/v1/x', 'new.test', 'a', '/x');
    await expectNoRoute(lb, '/x', 'new.test');

    await settled(lb, await deleteKey(etcd, lb, 'services/web/virtual_path'));
    await expectRoute(lb, '/v1/x', 'new.test', 'a', '/v1/x');
  });
});

describe('reloads', () => {
  it('a burst of 100 upstream writes is applied in a few applies (about one per 500 ms of burst), without a reload, and all 100 are served', async () => {
    const many = await startBackends(...Array.from({ length: 100 }, (_, i) => `u${String(i).padStart(3, '0')}`));
    try {
      const lb = await lbWith({ 'services/burst/virtual_hosts': 'burst.test' });
      const before = lb.controller.status().counters;

      // 100 writes back to back: each waits only for its own etcd put.
      let last = 0n;
      const burstStarted = performance.now();
      for (const [name, backend] of Object.entries(many)) {
        last = await putKeys(etcd, lb, { [`services/burst/upstreams/${name}`]: backend.address });
      }
      const burstMs = performance.now() - burstStarted;
      await settled(lb, last);

      const after = lb.controller.status().counters;
      const reloads = after.reloads - before.reloads;
      const applies = after.applies - before.applies;
      // Instances only: the runtime API adds the servers, HAProxy is not reloaded.
      expect(reloads, `reloads during the burst (counters before ${JSON.stringify(before)}, after ${JSON.stringify(after)})`).toBe(0);
      expect(after.runtimeUpdates - before.runtimeUpdates).toBeGreaterThanOrEqual(1);
      // Coalescing holds a burst for at most 500 ms: a burst the busy machine spread over more time
      // may take one more apply per 500 ms.
      expect(applies).toBeLessThanOrEqual(Math.max(3, Math.ceil(burstMs / 500) + 1));
      expect(after.failures).toBe(0);
      expect(lb.controller.status().state?.http.find((s) => s.name === 'burst')?.upstreams).toHaveLength(100);

      // Every one of the 100 instances answers: round robin over fresh requests reaches them all.
      const seen = new Set<string>();
      await waitFor(
        async () => {
          for (let i = 0; i < 100; i++) {
            const reply = await get(lb.httpPort, '/', 'burst.test');
            if (reply.backend) seen.add(reply.backend);
          }
          return seen.size === 100;
        },
        { timeoutMs: 15_000, what: 'all 100 upstreams to answer' },
      ).catch((error: Error) => {
        throw new Error(`${error.message}; ${seen.size} answered`);
      });
    } finally {
      await closeBackends(many);
    }
  });

  it('writing an identical value, or one that renders the same, reloads nothing', async () => {
    const lb = await lbWith({
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/one': b.a.address,
    });
    await expectRoute(lb, '/', 'web.test', 'a');
    const before = lb.controller.status().counters;

    // The very same value again: a new etcd revision, but nothing to apply.
    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/one': b.a.address }));
    // A different spelling of the same hosts renders the same config.
    await settled(lb, await putKeys(etcd, lb, { 'services/web/virtual_hosts': ' WEB.test ' }));

    const after = lb.controller.status().counters;
    expect(after.reloads).toBe(before.reloads);
    expect(after.applies).toBe(before.applies);
    expect(after.starts).toBe(before.starts);
    expect(after.unchanged).toBeGreaterThanOrEqual(before.unchanged + 1);
    await expectRoute(lb, '/', 'web.test', 'a');

    // ...while a real change does apply, so the counters above could have moved.
    await settled(lb, await putKeys(etcd, lb, { 'services/web/virtual_path': '/' }));
    expect(lb.controller.status().counters.reloads).toBe(before.reloads + 1);
    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/one': b.b.address }));
    expect(lb.controller.status().counters.runtimeUpdates).toBe(before.runtimeUpdates + 1);
    await expectRoute(lb, '/', 'web.test', 'b');
  });
});

describe('restart', () => {
  it('a new controller on the same prefix picks the state up again, including changes made while it was down', async () => {
    const first = await lbWith({
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/one': b.a.address,
      'services/api/virtual_path': '/api',
      'services/api/upstreams/one': b.b.address,
    });
    await expectRoute(first, '/x', 'web.test', 'a', '/x');
    await expectRoute(first, '/api/x', 'any.test', 'b', '/x');

    await first.stopAll();
    running.splice(running.indexOf(first), 1);
    // Nothing listens any more.
    await expect(get(first.httpPort, '/x', 'web.test', 1000)).rejects.toThrow();

    // Changed while no controller was running.
    await putKeys(etcd, first, { 'services/web/upstreams/one': b.c.address });

    const reuse = { stateDir: first.config.stateDir, prefix: first.prefix, httpPort: first.httpPort };
    tempDirs.push(reuse.stateDir);
    const second = await startTestEdgelb(etcd, {}, reuse);
    running.push(second);
    await lbReady(second);
    expect(second.httpPort).toBe(first.httpPort);
    await expectRoute(second, '/x', 'web.test', 'c', '/x');
    await expectRoute(second, '/api/x', 'any.test', 'b', '/x');
    expect(second.controller.status().state?.http.map((s) => s.name)).toEqual(['api', 'web']);

    // And it keeps watching.
    await settled(second, await putKeys(etcd, second, { 'services/web/upstreams/one': b.a.address }));
    await expectRoute(second, '/x', 'web.test', 'a', '/x');
  });
});

describe('etcd restart', () => {
  it('keeps serving while etcd is down and picks up changes once it is back', async () => {
    const lb = await lbWith({
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/one': b.a.address,
    });
    await expectRoute(lb, '/', 'web.test', 'a');

    await etcd.halt();
    try {
      // HAProxy keeps the last good config while the source is gone.
      await expectRoute(lb, '/', 'web.test', 'a');
    } finally {
      await etcd.restart();
    }

    const revision = await putKeys(etcd, lb, { 'services/web/upstreams/one': b.b.address });
    await settled(lb, revision, 30_000);
    await expectRoute(lb, '/', 'web.test', 'b');
  });
});

describe('isolation and supervision', () => {
  it('ignores keys of other load balancers, even one whose prefix starts with ours', async () => {
    const lb = await lbWith({
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/one': b.a.address,
    });
    // "<prefix>0/..." and "<prefix>-x/..." share our prefix as a string, but are other LBs.
    await etcd.client.put(`${lb.prefix}0/services/web/upstreams/one`).value(b.b.address);
    await etcd.client.put(`${lb.prefix}-x/services/intruder/virtual_hosts`).value('intruder.test');
    await etcd.client.put(`${lb.prefix}-x/services/intruder/upstreams/one`).value(b.b.address);
    // Keys outside services/ and tcp-services/ belong to other features and are ignored.
    const revision = await putKeys(etcd, lb, { 'certs/example': 'not a service', 'services/other/virtual_hosts': 'other.test' });
    await settled(lb, revision);

    expect(lb.controller.status().state?.http.map((s) => s.name)).toEqual(['other', 'web']);
    expect(lb.controller.status().rejected).toEqual([]);
    await expectBackendSet(lb, '/', 'web.test', ['a']);
    await expectNoRoute(lb, '/', 'intruder.test');
  });

  it('a killed HAProxy is started again with the last good config and later changes still apply', async () => {
    const lb = await lbWith({
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/one': b.a.address,
    });
    await expectRoute(lb, '/', 'web.test', 'a');
    const pid = lb.haproxy.pid;
    expect(pid).toBeDefined();

    process.kill(pid!, 'SIGKILL');
    await waitFor(() => lb.haproxy.restartCount >= 1 && lb.haproxy.running && lb.haproxy.pid !== pid, {
      what: 'HAProxy to be restarted',
    });
    await expectRoute(lb, '/', 'web.test', 'a');
    expect(logsWithMsg(lb, 'HAProxy restarted with the last good config')).toHaveLength(1);

    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/one': b.b.address }));
    await expectRoute(lb, '/', 'web.test', 'b');
    expect(lb.controller.status().counters.failures).toBe(0);
  });
});
