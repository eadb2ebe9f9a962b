import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCheckedBackend, type CheckedBackend } from '../support/checked-backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { deleteKey, expectBackendSet, expectRoute, logsWithMsg, masterReloads, putKeys, sample, settled, startLbWith } from '../support/lb.js';
import { waitFor } from '../support/wait.js';

// Instance changes through the runtime API (no reload) and healthy-only routing, against a real
// HAProxy: what clients see while instances come, go, fail and recover.

let etcd: EtcdServer;
const running: TestEdgelb[] = [];
const backends: CheckedBackend[] = [];

// Fast checks keep the file quick; the logic does not depend on the interval.
const FAST_CHECKS = { KONTENA_LB_CHECK_INTERVAL: '300ms' };

async function lbWith(entries: Record<string, string>, overrides: Record<string, string> = {}): Promise<TestEdgelb> {
  const lb = await startLbWith(etcd, entries, { ...FAST_CHECKS, ...overrides });
  running.push(lb);
  return lb;
}

async function backend(name: string, healthy = true): Promise<CheckedBackend> {
  const b = await startCheckedBackend(name, healthy);
  backends.push(b);
  return b;
}

beforeAll(async () => {
  etcd = await startEtcd();
});

afterEach(async () => {
  for (const lb of running.splice(0)) await lb.stopAll();
  for (const b of backends.splice(0)) await b.close();
});

afterAll(async () => {
  await etcd?.stop();
});

describe('instance changes', () => {
  it('adding, moving and removing instances goes through the runtime API without a reload', async () => {
    const [a, b, c] = [await backend('a'), await backend('b'), await backend('c')];
    const lb = await lbWith({ 'services/web/virtual_hosts': 'web.test', 'services/web/upstreams/one': a.address });
    await expectRoute(lb, '/', 'web.test', 'a');
    const reloadsBefore = await masterReloads(lb);
    const countersBefore = lb.controller.status().counters;

    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/two': b.address }));
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);
    // "two" moves to another address: c takes its place.
    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/two': c.address }));
    await expectBackendSet(lb, '/', 'web.test', ['a', 'c']);
    await settled(lb, await deleteKey(etcd, lb, 'services/web/upstreams/one'));
    await expectBackendSet(lb, '/', 'web.test', ['c']);

    const counters = lb.controller.status().counters;
    expect(await masterReloads(lb)).toBe(reloadsBefore);
    expect(counters.reloads).toBe(countersBefore.reloads);
    expect(counters.runtimeUpdates - countersBefore.runtimeUpdates).toBe(3);
    expect(lb.controller.status().lastApply?.action).toBe('runtime');
    // The file follows the runtime: a reload now would start with exactly these servers.
    const { readFile } = await import('node:fs/promises');
    const file = await readFile(lb.configFile, 'utf8');
    expect(file).toContain(`server two ${c.address} check`);
    expect(file).not.toContain('server one ');
  });

  it('a runtime update HAProxy refuses falls back to a reload', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    // static-rr is not a dynamic algorithm: HAProxy refuses `add server` in such a backend.
    const lb = await lbWith({
      'services/web/virtual_hosts': 'web.test',
      'services/web/balance': 'static-rr',
      'services/web/upstreams/one': a.address,
    });
    const before = lb.controller.status().counters;
    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/two': b.address }));
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);
    const after = lb.controller.status().counters;
    expect(after.reloads).toBe(before.reloads + 1);
    expect(after.failures).toBe(0);
    const fallback = logsWithMsg(lb, 'runtime update not possible; reloading instead');
    expect(fallback.length).toBe(1);
    expect(String(fallback[0]!.err)).toMatch(/dynamic/i);
  });
});

describe('healthy-only routing', () => {
  const checked = (entries: Record<string, string>) => ({
    'services/web/virtual_hosts': 'web.test',
    'services/web/health_check_uri': '/health',
    ...entries,
  });

  it('takes a failing instance out of rotation and puts it back once healthy', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const lb = await lbWith(checked({ 'services/web/upstreams/a': a.address, 'services/web/upstreams/b': b.address }));
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);

    b.healthy = false;
    await expectBackendSet(lb, '/', 'web.test', ['a']);
    // Stays out: a longer sample, well past several check intervals, never reaches b.
    const servedBefore = b.requests();
    expect(new Set(await sample(lb, '/', 'web.test', 30))).toEqual(new Set(['a']));
    expect(b.requests()).toBe(servedBefore);

    b.healthy = true;
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);
  });

  it('gives a new instance no traffic before its first passing check', async () => {
    const [a, fresh] = [await backend('a'), await backend('fresh', false)];
    const lb = await lbWith(checked({ 'services/web/upstreams/a': a.address }));
    await expectRoute(lb, '/', 'web.test', 'a');

    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/fresh': fresh.address }));
    // Requests keep flowing while the new instance is checked (and fails) again and again: the
    // controller's first probes (quick retries), then HAProxy's checks.
    let sent = 0;
    await waitFor(
      async () => {
        const reply = await get(lb.httpPort, '/', 'web.test');
        sent++;
        expect(reply.backend).toBe('a');
        return fresh.healthChecks() >= 3 && sent >= 20;
      },
      { timeoutMs: 10_000, what: 'three health checks of the new instance and twenty requests' },
    );
    expect(fresh.requests()).toBe(0);

    fresh.healthy = true;
    await expectBackendSet(lb, '/', 'web.test', ['a', 'fresh']);
  });

  it('answers 503 at once when every instance is down, and recovers', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const lb = await lbWith(checked({ 'services/web/upstreams/a': a.address, 'services/web/upstreams/b': b.address }));
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);
    a.healthy = false;
    b.healthy = false;
    const reply = await waitFor(
      async () => {
        const r = await get(lb.httpPort, '/', 'web.test');
        return r.status === 503 && r;
      },
      { timeoutMs: 10_000, what: 'a 503 once both instances fail their checks' },
    );
    expect(reply.body).toContain('Service unavailable');
    // Fast, not a hang until a timeout: ten requests in a row, each well under a second.
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      expect((await get(lb.httpPort, '/', 'web.test')).status).toBe(503);
      expect(performance.now() - started).toBeLessThan(500);
    }
    a.healthy = true;
    await expectRoute(lb, '/', 'web.test', 'a');
  });

  it('keeps a failing instance out across a reload (health states are carried over)', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const lb = await lbWith(checked({ 'services/web/upstreams/a': a.address, 'services/web/upstreams/b': b.address }));
    b.healthy = false;
    await expectBackendSet(lb, '/', 'web.test', ['a']);
    const reloads = lb.controller.status().counters.reloads;
    await settled(lb, await putKeys(etcd, lb, { 'services/web/virtual_path': '/' }));
    expect(lb.controller.status().counters.reloads).toBe(reloads + 1);
    // Right after the reload, before any new check could have run: b is still known to be down.
    const servedBefore = b.requests();
    expect(new Set(await sample(lb, '/', 'web.test', 20))).toEqual(new Set(['a']));
    expect(b.requests()).toBe(servedBefore);
  });
});

describe('draining', () => {
  it('an instance removed and written back while it drains returns to service without a reload', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const lb = await lbWith({ 'services/web/virtual_hosts': 'web.test', 'services/web/upstreams/a': a.address, 'services/web/upstreams/b': b.address });
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);
    const reloads = lb.controller.status().counters.reloads;
    await settled(lb, await deleteKey(etcd, lb, 'services/web/upstreams/b'));
    await expectBackendSet(lb, '/', 'web.test', ['a']);
    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/b': b.address }));
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);
    expect(lb.controller.status().counters.reloads).toBe(reloads);
  });

  it('lets a request in flight on a removed instance finish while new requests go elsewhere', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const lb = await lbWith({ 'services/web/virtual_hosts': 'web.test', 'services/web/upstreams/a': a.address });
    await expectRoute(lb, '/', 'web.test', 'a');
    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/b': b.address }));
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);

    // Start slow requests until one is in flight on a, then remove a.
    const inFlight: Promise<Awaited<ReturnType<typeof get>>>[] = [];
    await waitFor(
      async () => {
        const [beforeA, beforeB] = [a.requests(), b.requests()];
        inFlight.push(get(lb.httpPort, '/slow?ms=1500', 'web.test'));
        await waitFor(() => a.requests() > beforeA || b.requests() > beforeB, { timeoutMs: 2000, what: 'the slow request to arrive' });
        return a.requests() > beforeA;
      },
      { timeoutMs: 8000, what: 'a slow request in flight on instance a' },
    );
    const reloads = lb.controller.status().counters.reloads;
    await settled(lb, await deleteKey(etcd, lb, 'services/web/upstreams/a'));
    await expectBackendSet(lb, '/', 'web.test', ['b']);

    const replies = await Promise.all(inFlight);
    expect(replies.map((r) => r.status)).toEqual(replies.map(() => 200));
    expect(replies.some((r) => r.backend === 'a')).toBe(true);
    expect(lb.controller.status().counters.reloads).toBe(reloads);
    // Once idle, the drained server is deleted from HAProxy (idle pooled connections to it are
    // purged after HAProxy's pool-purge-delay, 5 s by default, so this can take a few seconds).
    const { HaproxyRuntime } = await import('../../src/haproxy/runtime.js');
    const { statePaths } = await import('../../src/pipeline/settings-of.js');
    const runtime = new HaproxyRuntime(statePaths(lb.config.stateDir).adminSocket);
    await waitFor(async () => !(await runtime.raw('show servers state http-web')).includes(' a 127.0.0.1 '), {
      timeoutMs: 15_000,
      what: 'the drained server to be deleted',
    });
  });
});
