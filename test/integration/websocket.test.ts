import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLeaf } from '../support/certs.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { expectRoute, putKeys, settled, startBackends, closeBackends, startLbWith } from '../support/lb.js';
import type { Backend } from '../support/backend.js';
import { envCert } from '../support/tls.js';
import { openWs, startMaster, type Master, type WsClient } from '../support/ws-master.js';

// WebSockets through edgelb, over HTTP and HTTPS: an open WebSocket outlives HTTP timeouts
// far shorter than its idle time (KONTENA_LB_TUNNEL_TIMEOUT governs it instead) and a seamless
// reload. The client and server timeouts are set to 300 ms so that "far beyond" takes a second.

const HTTP_TIMEOUTS = 'timeout client 300ms\ntimeout server 300ms';
const HOST = 'ws.foo.com';

let etcd: EtcdServer;
let master: Master;
let lb: TestEdgelb;
let control: TestEdgelb;
let b: Record<'later', Backend>;
const clients: WsClient[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  master = await startMaster('m1');
  b = await startBackends('later');
  const cert = await makeLeaf({ names: [HOST] });
  const entries = { 'services/ws/virtual_hosts': HOST, 'services/ws/upstreams/m1': master.address };
  [lb, control] = await Promise.all([
    startLbWith(etcd, entries, { KONTENA_LB_CUSTOM_SETTINGS: HTTP_TIMEOUTS }, { envCerts: [envCert('SSL_CERT_ws', cert.bundlePem)] }),
    // The same, but with a tunnel timeout shorter than the idle time: shows the setting is what keeps sockets open.
    startLbWith(etcd, entries, { KONTENA_LB_CUSTOM_SETTINGS: HTTP_TIMEOUTS, KONTENA_LB_TUNNEL_TIMEOUT: '1200ms' }),
  ]);
  // The master takes traffic once its first health check has passed.
  await Promise.all([expectRoute(lb, '/', HOST, 'm1'), expectRoute(control, '/', HOST, 'm1')]);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await lb?.stopAll();
  await control?.stopAll();
  await master?.stop();
  await closeBackends(b);
  await etcd?.stop();
});

async function connect(url: string, options = {}): Promise<WsClient> {
  const client = await openWs(url, { headers: { host: HOST }, ...options });
  clients.push(client);
  return client;
}
const wsUrl = (port: number) => `ws://127.0.0.1:${port}/ws`;

describe('WebSockets', () => {
  it('upgrade over HTTP', async () => {
    const ws = await connect(wsUrl(lb.httpPort));
    expect(await ws.echo('hello')).toBe('m1:hello');
  });

  it('upgrade over HTTPS', async () => {
    const ws = await connect(`wss://127.0.0.1:${lb.config.httpsPort}/ws`, { servername: HOST, rejectUnauthorized: false });
    expect(await ws.echo('secure hello')).toBe('m1:secure hello');
  });

  it('stay open while idle far beyond the HTTP timeouts, closed only by the tunnel timeout', async () => {
    const kept = await connect(wsUrl(lb.httpPort));
    const short = await connect(wsUrl(control.httpPort));
    expect(await kept.echo('before')).toBe('m1:before');
    expect(await short.echo('before')).toBe('m1:before');
    const idleSince = Date.now();
    // The control load balancer closes its idle socket at its 1.2 s tunnel timeout: by then
    // both sockets have idled four times the 300 ms client and server timeouts.
    await expect(
      Promise.race([short.closed, new Promise((_, fail) => setTimeout(() => fail(new Error('control socket never closed')), 8000))]),
    ).resolves.toBeTypeOf('number');
    expect(Date.now() - idleSince).toBeGreaterThanOrEqual(1100);
    expect(kept.isOpen()).toBe(true);
    expect(await kept.echo('after a long silence')).toBe('m1:after a long silence');
  });

  it('stay open across a seamless reload', async () => {
    const ws = await connect(wsUrl(lb.httpPort));
    expect(await ws.echo('before reload')).toBe('m1:before reload');
    const reloadsBefore = lb.controller.status().counters.reloads;
    // A new service is a config change: HAProxy reloads, and a new worker takes new connections.
    await settled(lb, await putKeys(etcd, lb, { 'services/later/virtual_hosts': 'later.foo.com', 'services/later/upstreams/one': b.later.address }));
    await expectRoute(lb, '/', 'later.foo.com', 'later');
    expect(lb.controller.status().counters.reloads).toBeGreaterThan(reloadsBefore);
    expect(ws.isOpen()).toBe(true);
    expect(await ws.echo('after reload')).toBe('m1:after reload');
    // And a new WebSocket goes through the new worker.
    const fresh = await connect(wsUrl(lb.httpPort));
    expect(await fresh.echo('new worker')).toBe('m1:new worker');
  });
});
