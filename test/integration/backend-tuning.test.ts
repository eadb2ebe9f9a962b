import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCheckedBackend, type CheckedBackend } from '../support/checked-backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { expectRoute, putKeys, settled, startLbWith } from '../support/lb.js';

// timeout_server, timeout_connect and retry_on (issue 15) through a real HAProxy: a slow
// instance gets the client a 504 after timeout_server, and an instance that fails a first
// attempt is asked again when retry_on says so.

let etcd: EtcdServer;
const running: TestEdgelb[] = [];
const closers: (() => Promise<void>)[] = [];

async function lbWith(entries: Record<string, string>): Promise<TestEdgelb> {
  const lb = await startLbWith(etcd, entries);
  running.push(lb);
  return lb;
}

async function backend(name: string): Promise<CheckedBackend> {
  const b = await startCheckedBackend(name);
  closers.push(() => b.close());
  return b;
}

/** A backend that answers 503 to every other request (the first, third...), 200 to the rest. */
async function flakyBackend(): Promise<{ address: string; attempts: () => number }> {
  let attempts = 0;
  const server = http.createServer((_req, res) => {
    attempts++;
    const ok = attempts % 2 === 0;
    const body = JSON.stringify({ backend: ok ? 'flaky' : 'failed' });
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, attempts: () => attempts };
}

beforeAll(async () => {
  etcd = await startEtcd();
});

afterEach(async () => {
  for (const lb of running.splice(0)) await lb.stopAll();
  for (const close of closers.splice(0)) await close();
});

afterAll(async () => {
  await etcd?.stop();
});

describe('timeouts and retries', () => {
  it('timeout_server: a response slower than it gets the client a 504, a faster one passes', async () => {
    const slow = await backend('slow');
    const lb = await lbWith({ 'services/web/virtual_hosts': 'web.test', 'services/web/upstreams/one': slow.address, 'services/web/timeout_server': '400ms' });
    await expectRoute(lb, '/', 'web.test', 'slow');
    const started = Date.now();
    const late = await get(lb.httpPort, '/slow?ms=2000', 'web.test');
    expect(late.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(1900);
    expect((await get(lb.httpPort, '/slow?ms=50', 'web.test')).status).toBe(200);
    // Raised: the same slow request now passes.
    await settled(lb, await putKeys(etcd, lb, { 'services/web/timeout_server': '5s' }));
    expect((await get(lb.httpPort, '/slow?ms=1000', 'web.test')).status).toBe(200);
  });

  it('retry_on 503: a first attempt answered 503 is sent again; without it the client sees the 503', async () => {
    const flaky = await flakyBackend();
    const lb = await lbWith({ 'services/web/virtual_hosts': 'web.test', 'services/web/upstreams/one': flaky.address, 'services/web/timeout_connect': '1s' });
    // Default (conn-failure only): the 503 reaches the client, on one attempt.
    const before = flaky.attempts();
    const first = await get(lb.httpPort, '/', 'web.test');
    const second = await get(lb.httpPort, '/', 'web.test');
    expect([first.status, second.status].sort()).toEqual([200, 503]);
    expect(flaky.attempts() - before).toBe(2);

    await settled(lb, await putKeys(etcd, lb, { 'services/web/retry_on': 'conn-failure, empty-response 503' }));
    for (let i = 0; i < 4; i++) {
      const attempts = flaky.attempts();
      const reply = await get(lb.httpPort, '/', 'web.test');
      expect(reply.status).toBe(200);
      // Every request's first attempt is the 503 (the backend alternates), retried once.
      expect(flaky.attempts() - attempts).toBe(2);
    }
  });
});
