import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { closeBackends, expectRoute, startBackends, startLbWith } from '../support/lb.js';
import { request } from '../support/requests.js';

// KONTENA_LB_HEALTH_URI: HAProxy itself answers 200 on that path, for any host, ahead of every
// route (even a service on `/`); without the setting the path is routed.

let etcd: EtcdServer;
let b: Record<'catchall', Backend>;
const entries = () => ({
  'services/catchall/virtual_path': '/',
  'services/catchall/upstreams/one': b.catchall.address,
});

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('catchall');
});

afterAll(async () => {
  await closeBackends(b);
  await etcd?.stop();
});

describe('with KONTENA_LB_HEALTH_URI', () => {
  let lb: TestEdgelb;

  beforeAll(async () => {
    lb = await startLbWith(etcd, entries(), { KONTENA_LB_HEALTH_URI: '/lb-health' });
    await expectRoute(lb, '/other', 'www.foo.com', 'catchall');
  });

  afterAll(async () => {
    await lb?.stopAll();
  });

  it('answers 200 itself, for any host, without reaching a service', async () => {
    const before = b.catchall.requests.length;
    for (const host of ['www.foo.com', '10.0.0.1', 'unknown.invalid']) {
      const reply = await request(lb.httpPort, { path: '/lb-health', host });
      expect(reply.status).toBe(200);
      expect(reply.backend).toBeUndefined();
    }
    expect(b.catchall.requests.length).toBe(before);
  });

  it('routes every other path as usual', async () => {
    expect((await request(lb.httpPort, { path: '/lb-health/x', host: 'www.foo.com' })).backend).toBe('catchall');
    expect((await request(lb.httpPort, { path: '/other', host: 'www.foo.com' })).backend).toBe('catchall');
  });
});

describe('without KONTENA_LB_HEALTH_URI', () => {
  let lb: TestEdgelb;

  beforeAll(async () => {
    lb = await startLbWith(etcd, entries());
    await expectRoute(lb, '/other', 'www.foo.com', 'catchall');
  });

  afterAll(async () => {
    await lb?.stopAll();
  });

  it('routes that path like any other', async () => {
    const reply = await request(lb.httpPort, { path: '/lb-health', host: 'www.foo.com' });
    expect(reply.backend).toBe('catchall');
    expect(reply.backendUrl).toBe('/lb-health');
  });
});
