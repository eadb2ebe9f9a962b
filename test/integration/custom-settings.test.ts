import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startTestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { closeBackends, expectRoute, logsWithMsg, putKeys, settled, startBackends, startLbWith } from '../support/lb.js';
import { request } from '../support/requests.js';

// custom_settings as Kontena users write them: the familiar "*.foo.com -> foo.com" 301, with
// the ACL and redirect lines exactly as the Kontena load balancer's own test set them, and the
// same with `http-request redirect`, whose location is a log-format (the legacy `redirect`
// keyword sends its location literally, so only the status of that one is checked).

let etcd: EtcdServer;
let lb: TestEdgelb;
let b: Record<'wild' | 'modern', Backend>;

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('wild', 'modern');
  lb = await startLbWith(etcd, {
    'services/wild/virtual_hosts': '*.foo.com',
    'services/wild/upstreams/one': b.wild.address,
    'services/wild/custom_settings': '\n  acl wildcard hdr_reg(host) ^\\w*\\.foo.com\\w*\n  redirect code 301 location foo.com%[capture.req.uri] if wildcard\n',
    'services/modern/virtual_hosts': '*.bar.com',
    'services/modern/upstreams/one': b.modern.address,
    'services/modern/custom_settings':
      'acl wildcard hdr_reg(host) ^\\w*\\.bar.com\\w*\nhttp-request redirect code 301 location http://bar.com%[capture.req.uri] if wildcard',
  });
  await expectRoute(lb, '/x', 'foo.bar.foo.com', 'wild');
  await expectRoute(lb, '/x', 'a.b.bar.com', 'modern');
});

afterAll(async () => {
  await lb?.stopAll();
  await closeBackends(b);
  await etcd?.stop();
});

describe('custom_settings: *.foo.com -> foo.com', () => {
  it('redirects a one-label subdomain with 301 (the Kontena lines)', async () => {
    for (const host of ['www.foo.com', 'bar.foo.com']) {
      const reply = await request(lb.httpPort, { path: '/a/b?c=1', host });
      expect(reply.status).toBe(301);
      expect(reply.backend).toBeUndefined();
    }
  });

  it('redirects to the same path and query with http-request redirect', async () => {
    const reply = await request(lb.httpPort, { path: '/a/b?c=1', host: 'www.bar.com' });
    expect(reply.status).toBe(301);
    expect(reply.headers.location).toBe('http://bar.com/a/b?c=1');
  });

  it('serves what the ACL does not match', async () => {
    expect((await request(lb.httpPort, { path: '/x', host: 'foo.bar.foo.com' })).backend).toBe('wild');
    expect((await request(lb.httpPort, { path: '/x', host: 'a.b.bar.com' })).backend).toBe('modern');
  });
});

describe("custom_settings for the Kontena load balancer's Host handling", () => {
  it("strips the port from the Host header sent to the service, as the README's migration table says", async () => {
    await settled(
      lb,
      await putKeys(etcd, lb, {
        'services/strip/virtual_hosts': 'strip.test',
        'services/strip/upstreams/one': b.modern.address,
        'services/strip/custom_settings': 'http-request replace-header Host (.*):.* \\1',
      }),
    );
    await expectRoute(lb, '/strip-probe', 'strip.test:8080', 'modern');
    expect(b.modern.requests.filter((r) => r.url === '/strip-probe').at(-1)?.headers.host).toBe('strip.test');
  });
});

describe('custom_settings with an HAProxy 1.8 directive', () => {
  it('leaves that service out, serves the others, and names the directive and its replacement in the log line', async () => {
    await settled(
      lb,
      await putKeys(etcd, lb, {
        'services/legacy/virtual_hosts': 'legacy.test',
        'services/legacy/upstreams/one': b.modern.address,
        'services/legacy/custom_settings': 'http-request set-header X-Ok 1\nrspadd X-Frame-Options:\\ DENY',
      }),
    );
    const lines = logsWithMsg(lb, 'service left out: HAProxy rejected its settings').filter((l) => l.service === 'http:legacy');
    expect(lines).toHaveLength(1);
    expect(lines[0]?.haproxyError).toMatch(/The 'rspadd' directive is not supported anymore since HAProxy 2\.1/);
    expect(lines[0]?.hint).toMatch(
      /^line 2: rspadd is HAProxy 1\.8 syntax that HAProxy 2\.6 refuses \(removed in 2\.1\); instead: http-response add-header <name> <value>/,
    );
    expect(lb.controller.status().excluded.map((e) => e.service)).toEqual(['http:legacy']);
    await expectRoute(lb, '/x', 'a.b.bar.com', 'modern');
    expect((await request(lb.httpPort, { path: '/', host: 'legacy.test' })).status).toBe(503);
  });
});

describe('KONTENA_LB_CUSTOM_SETTINGS with an HAProxy 1.8 directive', () => {
  it('fails the apply (HAProxy refuses the whole config) and names the directive and its replacement', async () => {
    const other = await startTestEdgelb(etcd, { KONTENA_LB_CUSTOM_SETTINGS: 'timeout check 10s\noption http-tunnel' });
    try {
      await other.put('services/web/virtual_hosts', 'web.test');
      const failed = await waitFor(() => logsWithMsg(other, 'apply failed; HAProxy keeps serving the last good config')[0], {
        timeoutMs: 15_000,
        what: 'the apply to fail',
      });
      expect(failed.err).toMatch(/option 'http-tunnel' is not supported any more since HAProxy 2\.1/);
      expect(failed.err).toMatch(
        /KONTENA_LB_CUSTOM_SETTINGS line 2: option http-tunnel is HAProxy 1\.8 syntax that HAProxy 2\.6 refuses \(removed in 2\.1\); instead: remove the line/,
      );
    } finally {
      await other.stopAll();
    }
  });
});
