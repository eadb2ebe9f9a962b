import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { closeBackends, expectRoute, logsWithMsg, startBackends, startLbWith } from '../support/lb.js';
import { basicAuth, request } from '../support/requests.js';
import { probePort } from '../support/tls.js';

// HAProxy's statistics page on KONTENA_LB_STATS_PORT: behind basic auth (user "stats",
// STATS_PASSWORD) when the password is set, not served at all when it is not.

const PASSWORD = 'St4ts:pa$$-w0rd!';

let etcd: EtcdServer;
let b: Record<'web', Backend>;

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('web');
});

afterAll(async () => {
  await closeBackends(b);
  await etcd?.stop();
});

describe('statistics page with STATS_PASSWORD', () => {
  let lb: TestEdgelb;

  beforeAll(async () => {
    lb = await startLbWith(
      etcd,
      {
        'services/web/virtual_hosts': 'www.foo.com',
        'services/web/upstreams/web-1': b.web.address,
      },
      { STATS_PASSWORD: PASSWORD },
    );
    await expectRoute(lb, '/', 'www.foo.com', 'web');
  });

  afterAll(async () => {
    await lb?.stopAll();
  });

  const stats = (headers: Record<string, string> = {}, path = '/') => request(lb.config.statsPort, { path, headers });

  it('answers 401 with a realm without credentials or with wrong ones', async () => {
    for (const headers of [{}, basicAuth('stats', 'wrong'), basicAuth('admin', PASSWORD), basicAuth('stats', PASSWORD.slice(0, -1))]) {
      const reply = await stats(headers);
      expect(reply.status).toBe(401);
      expect(reply.headers['www-authenticate']).toBe('Basic realm="edgelb"');
      expect(reply.body).not.toContain('Statistics Report');
    }
  });

  it('serves the page, listing the services, to user stats with the password', async () => {
    const page = await stats(basicAuth('stats', PASSWORD));
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('Statistics Report');
    expect(page.body).toContain('http-web');
    const csv = await stats(basicAuth('stats', PASSWORD), '/;csv');
    expect(csv.status).toBe(200);
    expect(csv.body).toMatch(/^http-web,web-1,/m);
  });

  it('is not served on the HTTP port', async () => {
    const reply = await request(lb.httpPort, { path: '/', host: 'unknown.invalid', headers: basicAuth('stats', PASSWORD) });
    expect(reply.status).toBe(503);
    expect(reply.body).not.toContain('Statistics Report');
  });

  it('never logs the password', () => {
    expect(lb.logs.length).toBeGreaterThan(0);
    expect(JSON.stringify(lb.logs)).not.toContain(PASSWORD);
    expect(logsWithMsg(lb, 'statistics page off: set STATS_PASSWORD to turn it on')).toEqual([]);
  });
});

describe('statistics page without STATS_PASSWORD', () => {
  let lb: TestEdgelb;

  beforeAll(async () => {
    lb = await startLbWith(etcd, { 'services/web/virtual_hosts': 'www.foo.com', 'services/web/upstreams/web-1': b.web.address });
    await expectRoute(lb, '/', 'www.foo.com', 'web');
  });

  afterAll(async () => {
    await lb?.stopAll();
  });

  it('is off: nothing listens on the stats port, and the log says how to turn it on', async () => {
    expect(await probePort(lb.config.statsPort)).toBe('refused');
    expect(logsWithMsg(lb, 'statistics page off: set STATS_PASSWORD to turn it on')).toHaveLength(1);
    // The load balancer itself serves.
    expect((await request(lb.httpPort, { host: 'www.foo.com' })).backend).toBe('web');
  });
});
