import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../support/apps.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { startLbWith } from '../support/lb.js';
import { freePort } from '../support/ports.js';
import { request } from '../support/requests.js';
import { waitFor } from '../support/wait.js';

// HTTP health checks seen from outside: health_check_uri decides which instances take traffic
// by the status they answer there; health_check_port sends the checks to another port of each
// instance. Two instances on different loopback addresses share the health port number, as
// containers on different hosts would.

let etcd: EtcdServer;
let lb: TestEdgelb;
const apps: Record<string, App> = {};

beforeAll(async () => {
  etcd = await startEtcd();
  apps.u1 = await startApp({ name: 'u1', healthPath: '/healthz' });
  apps.u2 = await startApp({ name: 'u2', healthPath: '/healthz' });
  const healthPort = await freePort();
  apps.p1 = await startApp({ name: 'p1', host: '127.0.0.2' });
  apps.p2 = await startApp({ name: 'p2', host: '127.0.0.3' });
  // Only p1 has something listening on the health port.
  apps.p1health = await startApp({ name: 'p1health', host: '127.0.0.2', port: healthPort, healthPath: '/hc' });
  lb = await startLbWith(etcd, {
    'services/uri/virtual_hosts': 'uri.foo.com',
    'services/uri/health_check_uri': '/healthz',
    'services/uri/upstreams/u1': apps.u1.address,
    'services/uri/upstreams/u2': apps.u2.address,
    'services/port/virtual_hosts': 'port.foo.com',
    'services/port/health_check_uri': '/hc',
    'services/port/health_check_port': String(healthPort),
    'services/port/upstreams/p1': apps.p1.address,
    'services/port/upstreams/p2': apps.p2.address,
  });
});

afterAll(async () => {
  await lb?.stopAll();
  await Promise.all(Object.values(apps).map((a) => a.close()));
  await etcd?.stop();
});

/** Polls until `count` requests in a row are answered by exactly `expected`. */
async function expectServedBy(host: string, expected: string[], timeoutMs = 15_000): Promise<void> {
  let last: string[] = [];
  await waitFor(
    async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) seen.add((await request(lb.httpPort, { host })).backend ?? 'none');
      last = [...seen].sort();
      return last.join() === [...expected].sort().join();
    },
    { timeoutMs, what: `${host} to be served by exactly [${expected}]` },
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last: [${last}]`);
  });
}

describe('health_check_uri', () => {
  it('checks GET <uri> on each instance', async () => {
    await waitFor(() => apps.u1!.requests.some((r) => r.url === '/healthz') && apps.u2!.requests.some((r) => r.url === '/healthz'), {
      timeoutMs: 10_000,
      what: 'both instances to receive a health check',
    });
  });

  it('takes an instance out while it answers 5xx there, and back once it answers 2xx', async () => {
    await expectServedBy('uri.foo.com', ['u1', 'u2']);
    apps.u2!.healthStatus = 503;
    await expectServedBy('uri.foo.com', ['u1']);
    apps.u2!.healthStatus = 200;
    await expectServedBy('uri.foo.com', ['u1', 'u2']);
  });
});

describe('health_check_port', () => {
  it('sends the checks to that port, not the traffic port', async () => {
    await waitFor(() => apps.p1health!.requests.some((r) => r.url === '/hc'), { timeoutMs: 10_000, what: 'a check on the health port' });
    expect(apps.p1!.requests.some((r) => r.url === '/hc')).toBe(false);
    expect(apps.p2!.requests.some((r) => r.url === '/hc')).toBe(false);
  });

  it('serves only the instance whose health port answers', async () => {
    await expectServedBy('port.foo.com', ['p1']);
  });
});
