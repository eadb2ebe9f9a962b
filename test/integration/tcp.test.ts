import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { deleteKey, putKeys, settled, startEchoServer, startLbWith, tcpRoundTrip, type EchoServer } from '../support/lb.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

// TCP services: bytes through HAProxy to a real echo server and back.

let etcd: EtcdServer;
let echo: EchoServer;
let echo2: EchoServer;
const running: TestEdgelb[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  echo = await startEchoServer();
  echo2 = await startEchoServer();
});

afterEach(async () => {
  for (const lb of running.splice(0)) await lb.stopAll();
});

afterAll(async () => {
  await echo?.close();
  await echo2?.close();
  await etcd?.stop();
});

async function lbWith(entries: Record<string, string> = {}): Promise<TestEdgelb> {
  const lb = await startLbWith(etcd, entries);
  running.push(lb);
  return lb;
}

/** Waits until a round trip through `port` echoes `payload` exactly. */
async function expectEcho(port: number, payload: Buffer): Promise<void> {
  const back = await waitFor(() => tcpRoundTrip(port, payload), { timeoutMs: 5000, what: `an echo through port ${port}` });
  expect(back.length).toBe(payload.length);
  expect(back.equals(payload)).toBe(true);
}

/** Waits until the port no longer forwards: the connection is refused or closed without an echo. */
async function expectNotForwarding(port: number): Promise<Error> {
  return waitFor(
    () =>
      tcpRoundTrip(port, Buffer.from('ping'), 1000).then(
        () => false,
        (error: Error) => error,
      ),
    { timeoutMs: 5000, what: `port ${port} to stop forwarding` },
  );
}

function rejectionFor(lb: TestEdgelb, key: string) {
  return lb.controller.status().rejected.find((r) => r.key === key);
}

describe('tcp services', () => {
  it('needs an external_port: an upstream alone is not served, adding the port serves it', async () => {
    const port = await freePort();
    const lb = await lbWith({ 'tcp-services/echo/upstreams/one': echo.address });
    expect(rejectionFor(lb, 'tcp-services/echo/external_port')?.reason).toMatch(/not served/);
    expect(lb.controller.status().state?.tcp).toEqual([]);

    await settled(lb, await putKeys(etcd, lb, { 'tcp-services/echo/external_port': String(port) }));
    expect(rejectionFor(lb, 'tcp-services/echo/external_port')).toBeUndefined();
    await expectEcho(port, Buffer.from('hello through haproxy\n'));
  });

  it('needs an upstream: forwards bytes once it has one, and stops when the upstream is deleted', async () => {
    const port = await freePort();
    const lb = await lbWith({ 'tcp-services/echo/external_port': String(port) });
    expect(rejectionFor(lb, 'tcp-services/echo/upstreams')?.reason).toMatch(/no upstreams/);
    const refused = await expectNotForwarding(port);
    expect(refused.message).toMatch(/ECONNREFUSED/);

    const connectionsBefore = echo.connections();
    await settled(lb, await putKeys(etcd, lb, { 'tcp-services/echo/upstreams/one': echo.address }));
    // Binary data, every byte value, larger than one socket buffer.
    const payload = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(256 * 1024)]);
    await expectEcho(port, payload);
    expect(echo.connections()).toBeGreaterThan(connectionsBefore);

    await settled(lb, await deleteKey(etcd, lb, 'tcp-services/echo/upstreams/one'));
    expect(rejectionFor(lb, 'tcp-services/echo/upstreams')?.reason).toMatch(/no upstreams/);
    const error = await expectNotForwarding(port);
    expect(error.message).toMatch(/ECONNREFUSED|closed/);
    // Once it stopped, further attempts reach nothing either.
    const connectionsAfterDelete = echo.connections();
    await expect(tcpRoundTrip(port, Buffer.from('again'), 1000)).rejects.toThrow();
    expect(echo.connections()).toBe(connectionsAfterDelete);
  });

  it('follows a changed upstream address and a changed external_port', async () => {
    const [port1, port2] = [await freePort(), await freePort()];
    const lb = await lbWith({
      'tcp-services/echo/external_port': String(port1),
      'tcp-services/echo/upstreams/one': echo.address,
    });
    await expectEcho(port1, Buffer.from('one'));

    await settled(lb, await putKeys(etcd, lb, { 'tcp-services/echo/upstreams/one': echo2.address }));
    // A round trip that reached the second echo server and not the first.
    await waitFor(
      async () => {
        const [c1, c2] = [echo.connections(), echo2.connections()];
        const back = await tcpRoundTrip(port1, Buffer.from('two'));
        return back.toString() === 'two' && echo2.connections() === c2 + 1 && echo.connections() === c1;
      },
      { timeoutMs: 5000, what: 'the echo to come from the new upstream address' },
    );

    await settled(lb, await putKeys(etcd, lb, { 'tcp-services/echo/external_port': String(port2) }));
    await expectEcho(port2, Buffer.from('moved'));
    await expectNotForwarding(port1);
  });

  it("a TCP service may not claim the load balancer's own HTTP port; the other TCP services still serve", async () => {
    const port = await freePort();
    const lb = await lbWith({});
    const revision = await putKeys(etcd, lb, {
      'tcp-services/clash/external_port': String(lb.httpPort),
      'tcp-services/clash/upstreams/one': echo.address,
      'tcp-services/fine/external_port': String(port),
      'tcp-services/fine/upstreams/one': echo.address,
    });
    await settled(lb, revision);
    expect(rejectionFor(lb, 'tcp-services/clash/external_port')?.reason).toMatch(/already used/);
    expect(lb.controller.status().state?.tcp.map((s) => s.name)).toEqual(['fine']);
    await expectEcho(port, Buffer.from('fine'));
  });
});
