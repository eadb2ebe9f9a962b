import { readFile } from 'node:fs/promises';
import net from 'node:net';
import type { StatusReport } from '../../src/admin/status.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCheckedBackend, type CheckedBackend } from '../support/checked-backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { deleteKey, expectBackendSet, masterReloads, putKeys, sample, settled, startLbWith, tcpRoundTrip } from '../support/lb.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

// weights/<instance> (issue 15): a weight change goes through the runtime API (`set server
// <b>/<s> weight <n>`), with no reload, and a weight of 0 takes an instance out of new traffic
// while the requests it is serving finish.

let etcd: EtcdServer;
const running: TestEdgelb[] = [];
const backends: CheckedBackend[] = [];

const closers: (() => Promise<void>)[] = [];

/** A TCP server that answers any bytes with its one-letter name. */
async function tcpNamed(name: string): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', () => socket.write(name));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}
async function backend(name: string): Promise<CheckedBackend> {
  const b = await startCheckedBackend(name);
  backends.push(b);
  return b;
}

beforeAll(async () => {
  etcd = await startEtcd();
});

afterEach(async () => {
  for (const lb of running.splice(0)) await lb.stopAll();
  for (const b of backends.splice(0)) await b.close();
  for (const close of closers.splice(0)) await close();
});

afterAll(async () => {
  await etcd?.stop();
});

describe('weights/<instance>', () => {
  it('weight 0 moves new requests away without a reload, and the requests in flight finish', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const lb = await startLbWith(
      etcd,
      { 'services/web/virtual_hosts': 'web.test', 'services/web/upstreams/one': a.address, 'services/web/upstreams/two': b.address },
      { KONTENA_LB_CHECK_INTERVAL: '300ms' },
    );
    running.push(lb);
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);
    const reloadsBefore = await masterReloads(lb);
    const countersBefore = lb.controller.status().counters;

    // Slow requests spread over both instances (roundrobin), still running when the weight changes.
    const inFlight = Array.from({ length: 4 }, () => get(lb.httpPort, '/slow?ms=1500', 'web.test'));
    await settled(lb, await putKeys(etcd, lb, { 'services/web/weights/one': '0' }));
    const seen = new Set(await sample(lb, '/', 'web.test', 20));
    expect([...seen]).toEqual(['b']);
    const finished = await Promise.all(inFlight);
    expect(finished.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(finished.map((r) => r.backend))).toEqual(new Set(['a', 'b']));

    // Back to the default (the key deleted): both serve again, still without a reload.
    await settled(lb, await deleteKey(etcd, lb, 'services/web/weights/one'));
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);

    const counters = lb.controller.status().counters;
    expect(await masterReloads(lb)).toBe(reloadsBefore);
    expect(counters.reloads).toBe(countersBefore.reloads);
    expect(counters.runtimeUpdates - countersBefore.runtimeUpdates).toBe(2);
    expect(lb.controller.status().lastApply?.action).toBe('runtime');
    // The file follows: a reload would load the weight the runtime has.
    const file = await readFile(lb.configFile, 'utf8');
    expect(file).toMatch(new RegExp(`server one ${a.address} check .* weight 100\\b`));
  });

  it('weights share new requests in proportion, and a reload keeps the weight', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const lb = await startLbWith(
      etcd,
      {
        'services/web/virtual_hosts': 'web.test',
        'services/web/upstreams/one': a.address,
        'services/web/upstreams/two': b.address,
        'services/web/weights/one': '3',
        'services/web/weights/two': '1',
      },
      { KONTENA_LB_CHECK_INTERVAL: '300ms' },
    );
    running.push(lb);
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);
    const share = async () => (await sample(lb, '/', 'web.test', 40)).filter((name) => name === 'a').length;
    // /status reports each instance's weight.
    const status = JSON.parse((await get(lb.config.adminPort, '/status')).body) as StatusReport;
    expect(status.services.find((service) => service.name === 'web')?.instances.map((i) => [i.name, i.weight])).toEqual([
      ['one', 3],
      ['two', 1],
    ]);
    // roundrobin with weights 3:1 is exact over whole rounds: 30 of 40.
    expect(await share()).toBe(30);
    // A structural change reloads: the new worker loads weight 3 and 1 from the file.
    const reloads = lb.controller.status().counters.reloads;
    await settled(lb, await putKeys(etcd, lb, { 'services/web/virtual_path': '/' }));
    expect(lb.controller.status().counters.reloads).toBe(reloads + 1);
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);
    expect(await share()).toBe(30);
  });

  it('a static algorithm (static-rr) takes only 0% or 100% at runtime: any other weight change falls back to a reload, and applies', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const lb = await startLbWith(
      etcd,
      {
        'services/web/virtual_hosts': 'web.test',
        'services/web/balance': 'static-rr',
        'services/web/upstreams/one': a.address,
        'services/web/upstreams/two': b.address,
      },
      { KONTENA_LB_CHECK_INTERVAL: '300ms' },
    );
    running.push(lb);
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);
    const reloads = lb.controller.status().counters.reloads;
    // 0 is 0%: HAProxy takes it at runtime.
    await settled(lb, await putKeys(etcd, lb, { 'services/web/weights/one': '0' }));
    expect([...new Set(await sample(lb, '/', 'web.test', 10))]).toEqual(['b']);
    expect(lb.controller.status().counters.reloads).toBe(reloads);
    // 3 is neither: refused by HAProxy ("only accepts weights '0%' and '100%'"), so a reload applies it.
    await settled(lb, await putKeys(etcd, lb, { 'services/web/weights/one': '3', 'services/web/weights/two': '1' }));
    expect(lb.controller.status().counters.reloads).toBe(reloads + 1);
    await expectBackendSet(lb, '/', 'web.test', ['a', 'b']);
    expect((await sample(lb, '/', 'web.test', 40)).filter((name) => name === 'a').length).toBe(30);
  });

  it('TCP: weight 0 moves new connections away without a reload', async () => {
    const [a, b] = [await tcpNamed('a'), await tcpNamed('b')];
    const port = await freePort();
    const lb = await startLbWith(etcd, {
      'tcp-services/db/external_port': String(port),
      'tcp-services/db/balance': 'roundrobin',
      'tcp-services/db/upstreams/one': a,
      'tcp-services/db/upstreams/two': b,
    });
    running.push(lb);
    const answers = async (count: number) => {
      const seen = new Set<string>();
      for (let i = 0; i < count; i++) seen.add(String(await tcpRoundTrip(port, Buffer.from('x'))));
      return [...seen].sort();
    };
    await waitFor(async () => (await answers(6)).join() === 'a,b', { timeoutMs: 5000, what: 'connections spread over a and b' });
    const reloads = lb.controller.status().counters.reloads;
    await settled(lb, await putKeys(etcd, lb, { 'tcp-services/db/weights/one': '0' }));
    expect(await answers(10)).toEqual(['b']);
    expect(lb.controller.status().counters.reloads).toBe(reloads);
  });
});
