import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { startTestEdgelb, type TestEdgelb } from '../support/edgelb.js';
import { startBackend, type Backend } from '../support/backend.js';
import { get } from '../support/http.js';
import { waitFor } from '../support/wait.js';

describe('ACME HTTP-01 challenge answering', () => {
  let etcd: EtcdServer;
  let lb: TestEdgelb;
  let web: Backend;

  beforeAll(async () => {
    etcd = await startEtcd();
    web = await startBackend('web');
    lb = await startTestEdgelb(etcd, { ACME_CHALLENGE_envtoken: 'envtoken.thumbprint-from-env' });
    // A catch-all service with an ssl_redirect would swallow challenges if they were not answered first.
    await lb.put('services/web/virtual_path', '/');
    await lb.put('services/web/upstreams/a', web.address);
    await waitFor(async () => (await get(lb.httpPort, '/x')).backend === 'web', { what: 'catch-all route' });
    await lb.controller.whenIdle();
  });
  afterAll(async () => {
    await lb?.stopAll();
    await web?.close();
    await etcd?.stop();
  });

  it('answers a token from the environment for any host, as text/plain', async () => {
    const reply = await get(lb.httpPort, '/.well-known/acme-challenge/envtoken', 'anything.example.com');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/plain');
    expect(reply.body).toBe('envtoken.thumbprint-from-env');
  });

  it('answers a token written to etcd, without a reload, and forgets it when deleted', async () => {
    const before = lb.controller.status().counters;
    await lb.put('acme/challenges/Tok_en-1', 'Tok_en-1.abcDEF_123-x');
    const reply = await waitFor(
      async () => {
        const r = await get(lb.httpPort, '/.well-known/acme-challenge/Tok_en-1', 'www.example.org:8080');
        return r.status === 200 && r;
      },
      { what: 'the etcd token to be served' },
    );
    expect(reply.body).toBe('Tok_en-1.abcDEF_123-x');
    await lb.del('acme/challenges/Tok_en-1');
    await waitFor(async () => (await get(lb.httpPort, '/.well-known/acme-challenge/Tok_en-1')).status === 404, { what: 'the token to go' });
    const after = lb.controller.status().counters;
    expect(after.reloads).toBe(before.reloads);
    expect(after.runtimeUpdates).toBeGreaterThanOrEqual(before.runtimeUpdates + 2);
  });

  it('answers 404 to an unknown token instead of routing it to a service', async () => {
    const reply = await get(lb.httpPort, '/.well-known/acme-challenge/unknown', 'x.test');
    expect(reply.status).toBe(404);
    expect(reply.backend).toBeUndefined();
    expect(web.requests.some((r) => r.url.includes('acme-challenge'))).toBe(false);
  });

  it('refuses a token that is not base64url, keeping the others', async () => {
    await lb.put('acme/challenges/bad token', 'x.y');
    await lb.put('acme/challenges/good', 'good.z');
    await waitFor(async () => (await get(lb.httpPort, '/.well-known/acme-challenge/good')).status === 200, { what: 'good token' });
    expect(lb.controller.status().rejected.map((r) => r.key)).toContain('acme/challenges/bad token');
  });
});
