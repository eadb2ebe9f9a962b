import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import { makeLeaf } from '../support/certs.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { startTestEdgelb } from '../support/edgelb.js';
import { closeBackends, putKeys, settled, startBackends, startEchoServer, type EchoServer } from '../support/lb.js';
import { freePort } from '../support/ports.js';
import { proxyV1Header, rawExchange } from '../support/requests.js';
import { envCert } from '../support/tls.js';
import { waitFor } from '../support/wait.js';

// KONTENA_LB_ACCEPT_PROXY=true: an L4 load balancer in front sends a PROXY protocol header
// naming the real client. The backend must see that client in X-Forwarded-For, over HTTP and
// HTTPS; a TCP service passes the bytes after the header; a connection without one is refused.

let etcd: EtcdServer;
let lb: TestEdgelb;
let b: Record<'web', Backend>;
let echo: EchoServer;
let tcpPort: number;

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('web');
  echo = await startEchoServer();
  tcpPort = await freePort();
  const cert = await makeLeaf({ names: ['www.foo.com'] });
  // Not startLbWith: its readiness probe is a plain request, which this listener refuses.
  lb = await startTestEdgelb(etcd, { KONTENA_LB_ACCEPT_PROXY: 'true' }, undefined, { envCerts: [envCert('SSL_CERT_www', cert.bundlePem)] });
  await settled(
    lb,
    await putKeys(etcd, lb, {
      'services/web/virtual_hosts': 'www.foo.com',
      'services/web/upstreams/one': b.web.address,
      'tcp-services/echo/external_port': String(tcpPort),
      'tcp-services/echo/upstreams/one': echo.address,
    }),
  );
  await waitFor(async () => (await rawExchange(lb.httpPort, proxyV1Header('203.0.113.1', 50000, lb.httpPort) + GET)).status === 200, {
    timeoutMs: 10_000,
    what: 'HAProxy to answer a request behind a PROXY header',
  });
});

afterAll(async () => {
  await lb?.stopAll();
  await closeBackends(b);
  await echo?.close();
  await etcd?.stop();
});

const lastRequest = () => b.web.requests.at(-1);
const GET = 'GET /who HTTP/1.1\r\nHost: www.foo.com\r\nConnection: close\r\n\r\n';

/** PROXY header in clear, then TLS on the same connection, then one request. */
function httpsThroughProxy(port: number, header: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = net.createConnection({ host: '127.0.0.1', port }, () => {
      raw.write(header);
      const secure = tls.connect({ socket: raw, servername: 'www.foo.com', rejectUnauthorized: false }, () => secure.write(GET));
      let text = '';
      secure.on('data', (c: Buffer) => (text += c.toString('utf8')));
      secure.on('end', () => resolve(text));
      secure.on('error', reject);
    });
    raw.on('error', reject);
  });
}

describe('PROXY protocol', () => {
  it('HTTP: the backend sees the client named in the header', async () => {
    const reply = await rawExchange(lb.httpPort, proxyV1Header('203.0.113.7', 51000, lb.httpPort) + GET);
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ backend: 'web', url: '/who' });
    expect(lastRequest()?.headers['x-forwarded-for']).toBe('203.0.113.7');
    expect(lastRequest()?.headers['x-forwarded-proto']).toBe('http');
  });

  it('HTTPS: the header comes before the TLS handshake, and the backend sees the client', async () => {
    const text = await httpsThroughProxy(lb.config.httpsPort, proxyV1Header('198.51.100.23', 52000, lb.config.httpsPort));
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(lastRequest()?.headers['x-forwarded-for']).toBe('198.51.100.23');
    expect(lastRequest()?.headers['x-forwarded-proto']).toBe('https');
  });

  it('TCP: the bytes after the header reach the service, the header does not', async () => {
    const payload = 'hello through a PROXY header';
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.createConnection({ host: '127.0.0.1', port: tcpPort }, () => socket.write(proxyV1Header('192.0.2.99', 53000, tcpPort) + payload));
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('utf8');
        if (text.length >= payload.length) socket.end();
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(reply).toBe(payload);
  });

  it('refuses a connection that does not start with the header, on every listener', async () => {
    const before = b.web.requests.length;
    const plain = await rawExchange(lb.httpPort, GET);
    expect(plain.status).toBe(0);
    expect(b.web.requests.length).toBe(before);
    const tcp = await rawExchange(tcpPort, 'no header here\r\n');
    expect(tcp.text).toBe('');
    await expect(httpsThroughProxy(lb.config.httpsPort, '')).rejects.toThrow();
  });
});
