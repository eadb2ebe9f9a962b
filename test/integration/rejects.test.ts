import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import {
  closeBackends,
  deleteKey,
  expectBackendSet,
  expectNoRoute,
  expectRoute,
  expectUnavailable,
  logsWithMsg,
  putKeys,
  settled,
  startBackends,
  startLbWith,
} from '../support/lb.js';
import { get } from '../support/http.js';
import { freePort } from '../support/ports.js';

// Invalid entries are rejected one by one: the rest of the load balancer keeps serving.

let etcd: EtcdServer;
let b: Record<'good' | 'other' | 'bad', Backend>;
const running: TestEdgelb[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('good', 'other', 'bad');
});

afterEach(async () => {
  for (const lb of running.splice(0)) await lb.stopAll();
});

afterAll(async () => {
  await closeBackends(b);
  await etcd?.stop();
});

async function lbWith(entries: Record<string, string>): Promise<TestEdgelb> {
  const lb = await startLbWith(etcd, entries);
  running.push(lb);
  return lb;
}

/** Asserts the key is listed in status().rejected and was logged as 'entry rejected'. */
function expectRejected(lb: TestEdgelb, key: string, reason?: RegExp) {
  const rejection = lb.controller.status().rejected.find((r) => r.key === key);
  expect(rejection, `status().rejected should list ${key}: ${JSON.stringify(lb.controller.status().rejected)}`).toBeDefined();
  if (reason) expect(rejection?.reason).toMatch(reason);
  const logged = logsWithMsg(lb, 'entry rejected').filter((l) => l.key === key);
  expect(logged, `an 'entry rejected' log line for ${key}`).toHaveLength(1);
  expect(logged[0]?.level).toBe(40);
  return rejection!;
}

describe('invalid entries', () => {
  it('malformed or out-of-range upstream addresses are rejected while sibling upstreams keep serving', async () => {
    const lb = await lbWith({
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/good': b.good.address,
      'services/web/upstreams/no-port': '127.0.0.1',
      'services/web/upstreams/garbage': 'not an address',
      'services/web/upstreams/too-big': '127.0.0.1:70000',
      'services/web/upstreams/zero': '127.0.0.1:0',
      'services/web/upstreams/wild': '*.example.com:80',
    });
    expectRejected(lb, 'services/web/upstreams/no-port', /not host:port/);
    expectRejected(lb, 'services/web/upstreams/garbage', /not host:port/);
    expectRejected(lb, 'services/web/upstreams/too-big', /out of range/);
    expectRejected(lb, 'services/web/upstreams/zero', /out of range/);
    expectRejected(lb, 'services/web/upstreams/wild', /wildcard/);
    expect(lb.controller.status().state?.http[0]?.upstreams.map((u) => u.name)).toEqual(['good']);
    // Every request reaches the one valid upstream.
    await expectBackendSet(lb, '/', 'web.test', ['good']);
    expect(lb.controller.status().counters.failures).toBe(0);
  });

  it('a virtual_hosts value with a newline rejects that service only; its siblings keep serving', async () => {
    const badRequestsBefore = b.bad.requests.length;
    const lb = await lbWith({
      'services/evil/virtual_hosts': 'evil.test\n    use_backend http-evil if TRUE',
      'services/evil/upstreams/one': b.bad.address,
      'services/good/virtual_hosts': 'good.test',
      'services/good/upstreams/one': b.good.address,
      'services/other/virtual_path': '/other',
      'services/other/upstreams/one': b.other.address,
    });
    const rejection = expectRejected(lb, 'services/evil/virtual_hosts', /line break/);
    expect(rejection.service).toBe('evil');
    expect(lb.controller.status().state?.http.map((s) => s.name)).toEqual(['good', 'other']);
    await expectRoute(lb, '/x', 'good.test', 'good', '/x');
    await expectRoute(lb, '/other/x', 'any.test', 'other', '/x');
    // The injected line did not make it into HAProxy: nothing reaches the evil backend.
    await expectNoRoute(lb, '/x', 'evil.test');
    await expectNoRoute(lb, '/x', 'any.test');
    expect(b.bad.requests).toHaveLength(badRequestsBefore);
  });

  it('a bad service name is rejected while the other services keep serving', async () => {
    const lb = await lbWith({
      'services/bad$name/virtual_hosts': 'dollar.test',
      'services/bad$name/upstreams/one': b.bad.address,
      'services/bad name/virtual_hosts': 'space.test',
      'services/bad name/upstreams/one': b.bad.address,
      'services/good/virtual_hosts': 'good.test',
      'services/good/upstreams/one': b.good.address,
    });
    expectRejected(lb, 'services/bad$name', /service name/);
    expectRejected(lb, 'services/bad name', /service name/);
    expect(lb.controller.status().state?.http.map((s) => s.name)).toEqual(['good']);
    await expectRoute(lb, '/', 'good.test', 'good', '/');
    await expectNoRoute(lb, '/', 'dollar.test');
    await expectNoRoute(lb, '/', 'space.test');
  });

  it('an invalid virtual_path rejects the service; an invalid optional setting only falls back to its default', async () => {
    const lb = await lbWith({
      'services/nopath/virtual_path': 'api', // no leading '/'
      'services/nopath/upstreams/one': b.bad.address,
      'services/loose/virtual_path': '/loose',
      'services/loose/keep_virtual_path': 'maybe',
      'services/loose/no_such_setting': 'x',
      'services/loose/upstreams/one': b.good.address,
    });
    expectRejected(lb, 'services/nopath/virtual_path', /must start with/);
    expectRejected(lb, 'services/loose/keep_virtual_path', /using the default/);
    expectRejected(lb, 'services/loose/no_such_setting', /unknown setting/);
    // keep_virtual_path fell back to false: the prefix is stripped.
    await expectRoute(lb, '/loose/x', 'any.test', 'good', '/x');
    await expectNoRoute(lb, '/api/x', 'any.test');
  });

  it('a rejected entry is logged once while it stays rejected, and fixing it serves it', async () => {
    const lb = await lbWith({
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/good': b.good.address,
      'services/web/upstreams/broken': '127.0.0.1:99999',
    });
    expectRejected(lb, 'services/web/upstreams/broken', /out of range/);

    // Another change while the entry is still broken: no second log line.
    await settled(lb, await putKeys(etcd, lb, { 'services/other/virtual_hosts': 'other.test', 'services/other/upstreams/one': b.other.address }));
    await expectRoute(lb, '/', 'other.test', 'other');
    expectRejected(lb, 'services/web/upstreams/broken');

    // Fixing it takes it out of the rejected list and into rotation.
    await settled(lb, await putKeys(etcd, lb, { 'services/web/upstreams/broken': b.bad.address }));
    expect(lb.controller.status().rejected).toEqual([]);
    await expectBackendSet(lb, '/', 'web.test', ['good', 'bad']);
  });
});

describe('settings HAProxy rejects', () => {
  it('a service whose custom_settings HAProxy rejects is left out; the others still apply and serve', async () => {
    const badRequestsBefore = b.bad.requests.length;
    const lb = await lbWith({
      'services/bad/virtual_hosts': 'bad.test',
      'services/bad/custom_settings': 'bogus-directive 1',
      'services/bad/upstreams/one': b.bad.address,
      'services/good/virtual_hosts': 'good.test',
      'services/good/upstreams/one': b.good.address,
    });
    await expectRoute(lb, '/x', 'good.test', 'good', '/x');
    await expectNoRoute(lb, '/x', 'bad.test');

    const leftOut = logsWithMsg(lb, 'service left out: HAProxy rejected its settings');
    expect(leftOut.length).toBeGreaterThanOrEqual(1);
    expect(leftOut[0]?.service).toBe('http:bad');
    expect(String(leftOut[0]?.haproxyError)).toMatch(/bogus-directive/);
    const status = lb.controller.status();
    expect(status.excluded.map((e) => e.service)).toEqual(['http:bad']);
    expect(status.state?.http.map((s) => s.name)).toEqual(['good']);
    expect(status.counters.failures).toBe(0);
    expect(b.bad.requests).toHaveLength(badRequestsBefore);

    // While it stays broken, other changes still apply.
    await settled(lb, await putKeys(etcd, lb, { 'services/later/virtual_hosts': 'later.test', 'services/later/upstreams/one': b.other.address }));
    await expectRoute(lb, '/', 'later.test', 'other', '/');
    await expectNoRoute(lb, '/x', 'bad.test');

    // Fixing its settings brings it back.
    await settled(lb, await putKeys(etcd, lb, { 'services/bad/custom_settings': 'timeout server 30s' }));
    await expectRoute(lb, '/x', 'bad.test', 'bad', '/x');
    expect(lb.controller.status().excluded).toEqual([]);
    await expectRoute(lb, '/x', 'good.test', 'good', '/x');
  });

  // HAProxy reports some errors only after parsing, without a line number and naming the proxy
  // with a capital P: "config : Proxy 'http-sticky': unable to find stick-table 'http-sticky'."
  it("a service whose custom_settings fail HAProxy's post-parse checks (no line number) is left out; the others still apply", async () => {
    const lb = await lbWith({
      'services/good/virtual_hosts': 'good.test',
      'services/good/upstreams/one': b.good.address,
    });
    await expectRoute(lb, '/', 'good.test', 'good', '/');

    // One snapshot brings a new good service and a service HAProxy rejects after parsing.
    const revision = await putKeys(etcd, lb, {
      'services/sticky/virtual_hosts': 'sticky.test',
      'services/sticky/custom_settings': 'stick on src',
      'services/sticky/upstreams/one': b.bad.address,
      'services/newer/virtual_hosts': 'newer.test',
      'services/newer/upstreams/one': b.other.address,
    });
    await settled(lb, revision);
    expect(lb.controller.status().excluded.map((e) => e.service)).toEqual(['http:sticky']);
    await expectRoute(lb, '/', 'newer.test', 'other', '/');
    await expectRoute(lb, '/', 'good.test', 'good', '/');
    await expectNoRoute(lb, '/', 'sticky.test');
  });

  it('a TCP service whose custom_settings HAProxy rejects is left out; HTTP services still serve', async () => {
    const port = await freePort();
    const lb = await lbWith({
      'tcp-services/badtcp/external_port': String(port),
      'tcp-services/badtcp/custom_settings': 'no-such-tcp-keyword on',
      'tcp-services/badtcp/upstreams/one': b.bad.address,
      'services/good/virtual_hosts': 'good.test',
      'services/good/upstreams/one': b.good.address,
    });
    await expectRoute(lb, '/', 'good.test', 'good', '/');
    const leftOut = logsWithMsg(lb, 'service left out: HAProxy rejected its settings');
    expect(leftOut.map((l) => l.service)).toContain('tcp:badtcp');
    expect(lb.controller.status().excluded.map((e) => e.service)).toEqual(['tcp:badtcp']);
    expect(lb.controller.status().state?.tcp).toEqual([]);
    await expect(get(port, '/', 'x', 1000)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('an upstream whose host name does not resolve does not break the config', async () => {
    const lb = await lbWith({
      'services/web/virtual_hosts': 'web.test',
      'services/web/upstreams/ghost': 'no-such-host.invalid:8080',
      'services/web/upstreams/good': b.good.address,
      'services/lonely/virtual_hosts': 'lonely.test',
      'services/lonely/upstreams/ghost': 'no-such-host.invalid:8080',
    });
    expect(lb.controller.status().counters.failures).toBe(0);
    await expectBackendSet(lb, '/', 'web.test', ['good']);
    await expectUnavailable(lb, '/', 'lonely.test');
  });

  it('custom_settings that would open a new section are rejected before HAProxy sees them', async () => {
    const lb = await lbWith({
      'services/sneaky/virtual_hosts': 'sneaky.test',
      'services/sneaky/custom_settings': 'timeout server 5s\nbackend stolen',
      'services/sneaky/upstreams/one': b.bad.address,
      'services/good/virtual_hosts': 'good.test',
      'services/good/upstreams/one': b.good.address,
    });
    expectRejected(lb, 'services/sneaky/custom_settings', /new section/);
    await expectRoute(lb, '/', 'good.test', 'good', '/');
    await expectNoRoute(lb, '/', 'sneaky.test');

    // Deleting the bad key lets the service through with its other settings.
    await settled(lb, await deleteKey(etcd, lb, 'services/sneaky/custom_settings'));
    await expectRoute(lb, '/', 'sneaky.test', 'bad', '/');
  });
});
