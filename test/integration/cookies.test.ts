import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../support/apps.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { startLbWith } from '../support/lb.js';
import { request } from '../support/requests.js';
import { waitFor } from '../support/wait.js';

// The `cookie` key's three modes, seen by a client: the Set-Cookie it receives, and requests
// carrying that cookie returning to the same instance while it is healthy.
//   ''                                          -> KONTENA_SERVERID inserted by the load balancer
//   'cookie LB_COOKIE_TEST insert indirect nocache' -> that cookie inserted
//   'cookie JSESSIONID prefix nocache'          -> the application's own cookie, prefixed with the instance

let etcd: EtcdServer;
let lb: TestEdgelb;
const apps: Record<string, App> = {};

beforeAll(async () => {
  etcd = await startEtcd();
  for (const name of ['d1', 'd2', 'c1', 'c2']) apps[name] = await startApp({ name });
  for (const name of ['p1', 'p2']) apps[name] = await startApp({ name, setCookie: { name: 'JSESSIONID', value: `sess-${name}` } });
  lb = await startLbWith(etcd, {
    'services/dflt/virtual_hosts': 'default.foo.com',
    'services/dflt/cookie': '',
    'services/dflt/upstreams/d1': apps.d1!.address,
    'services/dflt/upstreams/d2': apps.d2!.address,
    'services/custom/virtual_hosts': 'custom.foo.com',
    'services/custom/cookie': 'cookie LB_COOKIE_TEST insert indirect nocache',
    'services/custom/upstreams/c1': apps.c1!.address,
    'services/custom/upstreams/c2': apps.c2!.address,
    'services/prefix/virtual_hosts': 'prefix.foo.com',
    'services/prefix/cookie': 'cookie JSESSIONID prefix nocache',
    'services/prefix/upstreams/p1': apps.p1!.address,
    'services/prefix/upstreams/p2': apps.p2!.address,
  });
  // Every instance takes traffic once its first health check has passed.
  for (const [host, names] of [
    ['default.foo.com', ['d1', 'd2']],
    ['custom.foo.com', ['c1', 'c2']],
    ['prefix.foo.com', ['p1', 'p2']],
  ] as const) {
    await waitFor(async () => (await answeredBy(host, '', 6)).sort().join() === names.join(), { timeoutMs: 10_000, what: `${host} served by ${names}` });
  }
});

afterAll(async () => {
  await lb?.stopAll();
  await Promise.all(Object.values(apps).map((a) => a.close()));
  await etcd?.stop();
});

const get = (host: string, cookie?: string) => request(lb.httpPort, { host, headers: cookie ? { cookie } : {} });

function setCookieOf(reply: Awaited<ReturnType<typeof get>>): string {
  const header = reply.headers['set-cookie'];
  expect(header, 'a Set-Cookie header').toBeDefined();
  return (header ?? []).join('\n');
}

/** The backends that answer `count` requests carrying `cookie`. */
async function answeredBy(host: string, cookie: string, count = 8): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) seen.add((await get(host, cookie)).backend ?? 'none');
  return [...seen];
}

describe('cookie present but empty: KONTENA_SERVERID', () => {
  it('inserts KONTENA_SERVERID naming the instance that answered', async () => {
    for (let i = 0; i < 2; i++) {
      const reply = await get('default.foo.com');
      expect(reply.backend).toMatch(/^d[12]$/);
      expect(setCookieOf(reply)).toMatch(new RegExp(`^KONTENA_SERVERID=${reply.backend}; path=/`));
    }
  });

  it('sends requests carrying the cookie back to that instance, and hides the cookie from it', async () => {
    expect(await answeredBy('default.foo.com', 'KONTENA_SERVERID=d1')).toEqual(['d1']);
    expect(await answeredBy('default.foo.com', 'KONTENA_SERVERID=d2; theme=dark')).toEqual(['d2']);
    expect(apps.d2!.requests.at(-1)?.headers.cookie).toBe('theme=dark');
    // Without the cookie both instances take requests.
    expect((await answeredBy('default.foo.com', '', 8)).sort()).toEqual(['d1', 'd2']);
  });
});

describe('cookie as a full line: cookie LB_COOKIE_TEST insert indirect nocache', () => {
  it('inserts that cookie and sticks to the instance it names', async () => {
    const reply = await get('custom.foo.com');
    expect(setCookieOf(reply)).toMatch(new RegExp(`^LB_COOKIE_TEST=${reply.backend}; path=/`));
    expect(setCookieOf(reply)).not.toContain('KONTENA_SERVERID');
    expect(await answeredBy('custom.foo.com', 'LB_COOKIE_TEST=c2')).toEqual(['c2']);
    expect(await answeredBy('custom.foo.com', 'LB_COOKIE_TEST=c1')).toEqual(['c1']);
  });
});

describe('cookie as a full line: cookie JSESSIONID prefix nocache', () => {
  it("prefixes the application's own cookie with the instance name", async () => {
    const reply = await get('prefix.foo.com');
    expect(setCookieOf(reply)).toMatch(new RegExp(`^JSESSIONID=${reply.backend}~sess-${reply.backend}; Path=/`));
  });

  it('routes on the prefix and hands the application its cookie without it', async () => {
    expect(await answeredBy('prefix.foo.com', 'JSESSIONID=p2~sess-p2')).toEqual(['p2']);
    expect(apps.p2!.requests.at(-1)?.headers.cookie).toBe('JSESSIONID=sess-p2');
    expect(await answeredBy('prefix.foo.com', 'JSESSIONID=p1~sess-p1')).toEqual(['p1']);
  });
});

describe('stickiness lasts while the instance is healthy', () => {
  it("moves requests carrying a dead instance's cookie to a live one", async () => {
    await apps.d2!.close();
    await waitFor(async () => (await answeredBy('default.foo.com', 'KONTENA_SERVERID=d2', 4)).join() === 'd1', {
      timeoutMs: 15_000,
      what: 'requests with KONTENA_SERVERID=d2 to reach d1 once d2 is gone',
    });
    const reply = await get('default.foo.com', 'KONTENA_SERVERID=d2');
    expect(reply.status).toBe(200);
    // The client is re-pinned to the instance that answered.
    expect(setCookieOf(reply)).toMatch(/^KONTENA_SERVERID=d1; path=\//);
  });
});
