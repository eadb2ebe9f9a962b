import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { closeBackends, expectRoute, logsWithMsg, putKeys, settled, startBackends, startLbWith } from '../support/lb.js';
import { request } from '../support/requests.js';
import { waitFor } from '../support/wait.js';

// request_headers and response_headers through a real HAProxy: what the instance receives and
// what the client gets, values exactly as written (a '%[src]' stays text); an invalid line is
// logged with its key and the service is served without that key's changes.

const ODD = 'a#b "c" $HOME ${HOME} %[src] 50%';

let etcd: EtcdServer;
let lb: TestEdgelb;
let b: Record<'web', Backend>;

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('web');
  lb = await startLbWith(etcd, {
    'services/web/virtual_hosts': 'web.test',
    'services/web/upstreams/one': b.web.address,
    'services/web/request_headers': `set X-Env production\nadd X-Odd ${ODD}\ndel X-Debug`,
    'services/web/response_headers': 'set Cache-Control no-cache, no-store\nadd X-Frame-Options DENY\ndel Date',
  });
  await expectRoute(lb, '/', 'web.test', 'web');
});

afterAll(async () => {
  await lb?.stopAll();
  await closeBackends(b);
  await etcd?.stop();
});

const lastRequest = () => b.web.requests.at(-1)!;

describe('request_headers and response_headers', () => {
  it('the instance receives the request as the lines say: set replaces, add adds, del removes; values as written', async () => {
    const reply = await request(lb.httpPort, { host: 'web.test', headers: { 'x-env': 'staging', 'x-debug': '1', 'x-odd': 'from-client' } });
    expect(reply.backend).toBe('web');
    const headers = lastRequest().headers;
    expect(headers['x-env']).toBe('production');
    expect(headers['x-odd']).toBe(`from-client, ${ODD}`);
    expect(headers['x-debug']).toBeUndefined();
  });

  it('the client receives the response as the lines say', async () => {
    const reply = await request(lb.httpPort, { host: 'web.test' });
    expect(reply.headers['cache-control']).toBe('no-cache, no-store');
    expect(reply.headers['x-frame-options']).toBe('DENY');
    expect(reply.headers.date).toBeUndefined();
  });

  it('an invalid line: rejected with key, line and reason, the service served without any of that key', async () => {
    await settled(lb, await putKeys(etcd, lb, { 'services/web/request_headers': "set X-Env production\nset X-Evil a' if TRUE '" }));
    await waitFor(
      async () => {
        await request(lb.httpPort, { host: 'web.test' });
        return lastRequest().headers['x-env'] === undefined;
      },
      { timeoutMs: 5000, what: 'the request headers to be dropped' },
    );
    expect(lastRequest().headers['x-odd']).toBeUndefined();
    const rejected = logsWithMsg(lb, 'entry rejected').filter((l) => String(l.key).endsWith('services/web/request_headers'));
    expect(rejected.at(-1)?.reason).toMatch(/^request_headers line 2: the value may only contain printable ASCII without "'".*; using the default$/);
    // The response rules still apply.
    expect((await request(lb.httpPort, { host: 'web.test' })).headers['x-frame-options']).toBe('DENY');
  });
});
