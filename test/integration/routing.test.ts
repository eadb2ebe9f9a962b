import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import {
  closeBackends,
  expectBackendSet,
  expectNoRoute,
  expectReply,
  expectRoute,
  expectUnavailable,
  NO_ROUTE_TEXT,
  startBackends,
  startLbWith,
  UNAVAILABLE_TEXT,
} from '../support/lb.js';

// HTTP routing through a real HAProxy: each describe writes its services to its own etcd
// prefix, waits until the controller applied them, then checks which backend answers.
// Service names are chosen so that alphabetical order would give the WRONG answer, so a
// passing test shows the precedence rule itself at work.

let etcd: EtcdServer;

beforeAll(async () => {
  etcd = await startEtcd();
});

afterAll(async () => {
  await etcd?.stop();
});

describe('host and path precedence', () => {
  let lb: TestEdgelb;
  let b: Record<'hostpath' | 'host' | 'path' | 'path2', Backend>;

  beforeAll(async () => {
    b = await startBackends('hostpath', 'host', 'path', 'path2');
    lb = await startLbWith(etcd, {
      // host+path, named last alphabetically
      'services/z-hostpath/virtual_hosts': 'www.foo.com',
      'services/z-hostpath/virtual_path': '/api',
      'services/z-hostpath/upstreams/one': b.hostpath.address,
      // host only; the second host is written in mixed case
      'services/m-host/virtual_hosts': 'www.foo.com, Alias.Foo.COM',
      'services/m-host/upstreams/one': b.host.address,
      // path only, named first alphabetically
      'services/a-path/virtual_path': '/api',
      'services/a-path/upstreams/one': b.path.address,
      'services/b-path/virtual_path': '/other',
      'services/b-path/upstreams/one': b.path2.address,
    });
  });

  afterAll(async () => {
    await lb?.stopAll();
    await closeBackends(b);
  });

  it('a host+path service answers when both its host and its path match', async () => {
    await expectRoute(lb, '/api/x', 'www.foo.com', 'hostpath', '/x');
    await expectRoute(lb, '/api', 'www.foo.com', 'hostpath', '/');
  });

  it('a host+path service does not answer when only its host or only its path matches', async () => {
    // Host matches, path does not: the host-only service takes it.
    await expectRoute(lb, '/apix', 'www.foo.com', 'host', '/apix');
    await expectRoute(lb, '/elsewhere', 'www.foo.com', 'host', '/elsewhere');
    // Path matches, host does not: the path-only service takes it.
    await expectRoute(lb, '/api/x', 'other.com', 'path', '/x');
  });

  it('host-only beats path-only when both match', async () => {
    await expectRoute(lb, '/other/1', 'www.foo.com', 'host', '/other/1');
    await expectRoute(lb, '/other/1', 'unknown.com', 'path2', '/1');
  });

  it('a request that matches no service gets the no-route page', async () => {
    await expectNoRoute(lb, '/nothing', 'unknown.com');
  });

  it('host matching ignores a :port in the Host header and ignores case', async () => {
    await expectRoute(lb, '/x', 'www.foo.com:8180', 'host', '/x');
    await expectRoute(lb, '/x', 'WWW.Foo.COM', 'host', '/x');
    await expectRoute(lb, '/api/y', 'WWW.FOO.COM:8180', 'hostpath', '/y');
    // virtual_hosts was written as "Alias.Foo.COM"
    await expectRoute(lb, '/x', 'alias.foo.com', 'host', '/x');
    await expectRoute(lb, '/x', 'ALIAS.foo.com:80', 'host', '/x');
  });
});

describe('two services claiming the same host', () => {
  let lb: TestEdgelb;
  let b: Record<'alpha' | 'beta' | 'wildA' | 'wildB', Backend>;

  beforeAll(async () => {
    b = await startBackends('alpha', 'beta', 'wildA', 'wildB');
    // Written in reverse order, so insertion order cannot be what decides.
    lb = await startLbWith(etcd, {
      'services/beta/virtual_hosts': 'shared.test',
      'services/beta/upstreams/one': b.beta.address,
      'services/alpha/virtual_hosts': 'shared.test',
      'services/alpha/upstreams/one': b.alpha.address,
      'services/wild-b/virtual_hosts': '*.tie.test',
      'services/wild-b/upstreams/one': b.wildB.address,
      'services/wild-a/virtual_hosts': '*.tie.test',
      'services/wild-a/upstreams/one': b.wildA.address,
    });
  });

  afterAll(async () => {
    await lb?.stopAll();
    await closeBackends(b);
  });

  it('the alphabetically first service wins', async () => {
    await expectRoute(lb, '/', 'shared.test', 'alpha', '/');
    await expectRoute(lb, '/', 'x.tie.test', 'wildA', '/');
    // Consistently: a run of requests all go to alpha, none to beta.
    await expectBackendSet(lb, '/', 'shared.test', ['alpha']);
    await expectBackendSet(lb, '/', 'y.tie.test', ['wildA']);
  });
});

describe('path prefixes', () => {
  let lb: TestEdgelb;
  let b: Record<'root' | 'test' | 'testfoo' | 'api' | 'keep' | 'multi', Backend>;

  beforeAll(async () => {
    b = await startBackends('root', 'test', 'testfoo', 'api', 'keep', 'multi');
    // Alphabetical order favours the SHORTER prefixes here; the longest must still win.
    lb = await startLbWith(etcd, {
      'services/a-root/virtual_path': '/',
      'services/a-root/upstreams/one': b.root.address,
      'services/b-test/virtual_path': '/test',
      'services/b-test/upstreams/one': b.test.address,
      'services/c-testfoo/virtual_path': '/test/foo/', // trailing slash is dropped
      'services/c-testfoo/upstreams/one': b.testfoo.address,
      'services/d-api/virtual_path': '/api',
      'services/d-api/upstreams/one': b.api.address,
      'services/e-keep/virtual_path': '/keep',
      'services/e-keep/keep_virtual_path': 'true',
      'services/e-keep/upstreams/one': b.keep.address,
      'services/f-multi/virtual_path': '/one, /two/deep',
      'services/f-multi/upstreams/one': b.multi.address,
    });
  });

  afterAll(async () => {
    await lb?.stopAll();
    await closeBackends(b);
  });

  it('the longest matching prefix wins', async () => {
    await expectRoute(lb, '/test/foo/bar', 'any.test', 'testfoo', '/bar');
    await expectRoute(lb, '/test/foo', 'any.test', 'testfoo', '/');
    await expectRoute(lb, '/test/foo/', 'any.test', 'testfoo', '/');
    await expectRoute(lb, '/test/x', 'any.test', 'test', '/x');
    await expectRoute(lb, '/test', 'any.test', 'test', '/');
    await expectRoute(lb, '/other', 'any.test', 'root', '/other');
    await expectRoute(lb, '/', 'any.test', 'root', '/');
  });

  it('a prefix matches only on segment boundaries', async () => {
    await expectRoute(lb, '/api', 'any.test', 'api', '/');
    await expectRoute(lb, '/api/x', 'any.test', 'api', '/x');
    await expectRoute(lb, '/apix', 'any.test', 'root', '/apix');
    await expectRoute(lb, '/testx', 'any.test', 'root', '/testx');
    await expectRoute(lb, '/test/foox', 'any.test', 'test', '/foox');
  });

  it('the prefix is stripped and the query string kept', async () => {
    await expectRoute(lb, '/api/foo?q=1&r=2', 'any.test', 'api', '/foo?q=1&r=2');
    await expectRoute(lb, '/api?q=1', 'any.test', 'api', '/?q=1');
    await expectRoute(lb, '/api/a/b/c', 'any.test', 'api', '/a/b/c');
  });

  it('keep_virtual_path=true forwards the path unchanged', async () => {
    await expectRoute(lb, '/keep/foo?x=1', 'any.test', 'keep', '/keep/foo?x=1');
    await expectRoute(lb, '/keep', 'any.test', 'keep', '/keep');
  });

  it('each prefix of a comma-separated virtual_path routes and is stripped', async () => {
    await expectRoute(lb, '/one/a', 'any.test', 'multi', '/a');
    await expectRoute(lb, '/two/deep/b?z=9', 'any.test', 'multi', '/b?z=9');
    await expectRoute(lb, '/two/b', 'any.test', 'root', '/two/b');
  });
});

describe('wildcard hosts', () => {
  let lb: TestEdgelb;
  let b: Record<'wild' | 'exact' | 'wildpath', Backend>;

  beforeAll(async () => {
    b = await startBackends('wild', 'exact', 'wildpath');
    lb = await startLbWith(etcd, {
      // The wildcard service is first alphabetically; the exact host must still beat it.
      'services/a-wild/virtual_hosts': '*.example.com',
      'services/a-wild/upstreams/one': b.wild.address,
      'services/b-exact/virtual_hosts': 'www.example.com',
      'services/b-exact/upstreams/one': b.exact.address,
    });
  });

  afterAll(async () => {
    await lb?.stopAll();
    await closeBackends(b);
  });

  it('an exact host beats a wildcard host', async () => {
    await expectRoute(lb, '/', 'www.example.com', 'exact', '/');
    await expectRoute(lb, '/', 'WWW.EXAMPLE.COM:8080', 'exact', '/');
  });

  it('a wildcard matches every subdomain but not the apex or look-alike domains', async () => {
    await expectRoute(lb, '/a', 'api.example.com', 'wild', '/a');
    await expectRoute(lb, '/a', 'deep.sub.example.com', 'wild', '/a');
    await expectRoute(lb, '/a', 'Api.Example.Com:81', 'wild', '/a');
    await expectNoRoute(lb, '/a', 'example.com');
    await expectNoRoute(lb, '/a', 'notexample.com');
  });
});

describe('503 pages', () => {
  let lb: TestEdgelb;
  let b: Record<'live', Backend>;

  beforeAll(async () => {
    b = await startBackends('live');
    lb = await startLbWith(etcd, {
      'services/empty/virtual_hosts': 'empty.test',
      'services/empty-path/virtual_path': '/nobody',
      'services/live/virtual_hosts': 'live.test',
      'services/live/upstreams/one': b.live.address,
    });
  });

  afterAll(async () => {
    await lb?.stopAll();
    await closeBackends(b);
  });

  it('a service with no upstreams keeps its route and answers 503 with an HTML page', async () => {
    const reply = await expectUnavailable(lb, '/x', 'empty.test');
    expect(reply.status).toBe(503);
    expect(reply.headers['content-type']).toMatch(/^text\/html/);
    expect(reply.body).toContain('503');
    expect(reply.body).not.toContain(NO_ROUTE_TEXT);
    // A path-only service without upstreams keeps its route too.
    await expectUnavailable(lb, '/nobody/x', 'whatever.test');
    // ...and the service that has an upstream is unaffected.
    await expectRoute(lb, '/x', 'live.test', 'live', '/x');
  });

  it('a request matching no service gets a different 503 HTML page', async () => {
    const reply = await expectNoRoute(lb, '/x', 'nobody.test');
    expect(reply.status).toBe(503);
    expect(reply.headers['content-type']).toMatch(/^text\/html/);
    expect(reply.body).toContain('503');
    expect(reply.body).not.toContain(UNAVAILABLE_TEXT);
  });
});

describe('request headers', () => {
  let lb: TestEdgelb;
  let b: Record<'xff', Backend>;

  beforeAll(async () => {
    b = await startBackends('xff');
    lb = await startLbWith(etcd, {
      'services/xff/virtual_hosts': 'xff.test',
      'services/xff/upstreams/one': b.xff.address,
    });
  });

  afterAll(async () => {
    await lb?.stopAll();
    await closeBackends(b);
  });

  it('X-Forwarded-For with the client address and the original Host reach the backend', async () => {
    await expectReply(lb, '/hdr?n=1', 'xff.test:8180', (r) => r.backend === 'xff' && r.backendUrl === '/hdr?n=1', 'the xff backend');
    const seen = b.xff.requests.filter((r) => r.url === '/hdr?n=1');
    expect(seen.length).toBeGreaterThan(0);
    const last = seen[seen.length - 1]!;
    expect(last.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(last.headers.host).toBe('xff.test:8180');
  });
});
