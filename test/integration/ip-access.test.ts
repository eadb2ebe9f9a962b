import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startTestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import type { Reply } from '../support/http.js';
import { closeBackends, logsWithMsg, putKeys, settled, startBackends, startEchoServer, startLbWith, type EchoServer } from '../support/lb.js';
import { freePort } from '../support/ports.js';
import { proxyV1Header, rawExchange } from '../support/requests.js';
import { waitFor } from '../support/wait.js';

// ip_allow and ip_deny through a real HAProxy, with clients on several loopback addresses
// (127.0.0.0/8 is all local on Linux): 403 for a refused HTTP client, a closed connection for a
// refused TCP client; the real client behind the PROXY protocol; X-Forwarded-For believed only
// from KONTENA_LB_TRUSTED_PROXIES; an unusable list closes its service instead of opening it.

const CLIENT = '127.0.0.1';
const FRIEND = '127.0.0.2';
const PROXY = '127.0.0.3';

/** One GET from `from` (a local address) with extra headers. */
function getFrom(port: number, from: string, host: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/who', localAddress: from, headers: { host, ...headers }, agent: false, timeout: 5000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const json = String(res.headers['content-type']).startsWith('application/json') ? (JSON.parse(body) as { backend?: string; url?: string }) : {};
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, backend: json.backend, backendUrl: json.url });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Sends a payload from `from` (after `header`, a PROXY protocol header); resolves with what came back once enough arrived, or once the
 * server closed the connection. A connection neither answered nor closed within 2 s is an error:
 * a refused client must be closed, not left hanging.
 */
function tcpFrom(port: number, from: string, payload: string, header = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = net.createConnection({ host: '127.0.0.1', port, localAddress: from }, () => socket.write(header + payload));
    const timer = setTimeout(() => socket.destroy(new Error(`neither answered nor closed within 2 s (got ${JSON.stringify(text)})`)), 2000);
    socket.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      if (text.length >= payload.length) socket.destroy();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ECONNRESET') resolve(text);
      else reject(error);
    });
  });
}

let etcd: EtcdServer;
let b: Record<'allow' | 'deny', Backend>;
let echo: EchoServer;

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('allow', 'deny');
  echo = await startEchoServer();
});

afterAll(async () => {
  await closeBackends(b);
  await echo?.close();
  await etcd?.stop();
});

describe('ip_allow and ip_deny', () => {
  let lb: TestEdgelb;
  let tcpAllow: number;
  let tcpDeny: number;

  beforeAll(async () => {
    tcpAllow = await freePort();
    tcpDeny = await freePort();
    lb = await startLbWith(
      etcd,
      {
        'services/allow/virtual_hosts': 'allow.test',
        'services/allow/ip_allow': `${FRIEND}, 10.0.0.0/8`,
        'services/allow/upstreams/one': b.allow.address,
        'services/deny/virtual_hosts': 'deny.test',
        'services/deny/ip_deny': `192.0.2.0/24,${FRIEND}`,
        'services/deny/upstreams/one': b.deny.address,
        'tcp-services/allow/external_port': String(tcpAllow),
        'tcp-services/allow/ip_allow': FRIEND,
        'tcp-services/allow/upstreams/one': echo.address,
        'tcp-services/deny/external_port': String(tcpDeny),
        'tcp-services/deny/ip_deny': FRIEND,
        'tcp-services/deny/upstreams/one': echo.address,
      },
      { KONTENA_LB_TRUSTED_PROXIES: `${PROXY}/32` },
    );
    await waitFor(async () => (await getFrom(lb.httpPort, FRIEND, 'allow.test')).backend === 'allow', { timeoutMs: 5000, what: 'the allow service to answer' });
    await waitFor(async () => (await getFrom(lb.httpPort, CLIENT, 'deny.test')).backend === 'deny', { timeoutMs: 5000, what: 'the deny service to answer' });
  });

  afterAll(async () => {
    await lb?.stopAll();
  });

  it('HTTP: an allowed client reaches the service, any other gets 403 and never reaches it', async () => {
    expect((await getFrom(lb.httpPort, FRIEND, 'allow.test')).backend).toBe('allow');
    const before = b.allow.requests.length;
    const refused = await getFrom(lb.httpPort, CLIENT, 'allow.test');
    expect(refused.status).toBe(403);
    expect(b.allow.requests.length).toBe(before);
  });

  it('HTTP: a denied client gets 403, any other reaches the service', async () => {
    expect((await getFrom(lb.httpPort, FRIEND, 'deny.test')).status).toBe(403);
    expect((await getFrom(lb.httpPort, CLIENT, 'deny.test')).backend).toBe('deny');
  });

  it('TCP: an allowed client is forwarded, any other is closed without a byte', async () => {
    expect(await tcpFrom(tcpAllow, FRIEND, 'hello')).toBe('hello');
    expect(await tcpFrom(tcpAllow, CLIENT, 'hello')).toBe('');
    expect(await tcpFrom(tcpDeny, FRIEND, 'hello')).toBe('');
    expect(await tcpFrom(tcpDeny, CLIENT, 'hello')).toBe('hello');
  });

  it('X-Forwarded-For names the client only on a connection from a trusted proxy', async () => {
    // From the proxy: its X-Forwarded-For's last address is the client, for the rules and for the backend.
    const viaProxy = await getFrom(lb.httpPort, PROXY, 'allow.test', { 'x-forwarded-for': `198.51.100.9, ${FRIEND}` });
    expect(viaProxy.backend).toBe('allow');
    expect(b.allow.requests.at(-1)?.headers['x-forwarded-for']).toMatch(new RegExp(`, ${FRIEND.replaceAll('.', '\\.')}$`));
    expect((await getFrom(lb.httpPort, PROXY, 'allow.test', { 'x-forwarded-for': '198.51.100.9' })).status).toBe(403);
    expect((await getFrom(lb.httpPort, PROXY, 'deny.test', { 'x-forwarded-for': FRIEND })).status).toBe(403);
    // The proxy itself, without the header, is just a client (not allowed here).
    expect((await getFrom(lb.httpPort, PROXY, 'allow.test')).status).toBe(403);
    // From anyone else a spoofed X-Forwarded-For changes nothing.
    expect((await getFrom(lb.httpPort, CLIENT, 'allow.test', { 'x-forwarded-for': FRIEND })).status).toBe(403);
    expect((await getFrom(lb.httpPort, FRIEND, 'deny.test', { 'x-forwarded-for': '10.9.9.9' })).status).toBe(403);
    expect((await getFrom(lb.httpPort, CLIENT, 'deny.test', { 'x-forwarded-for': FRIEND })).backend).toBe('deny');
  });

  it('an unusable list closes its service (403, refused) with the key and reason logged, and it opens again once fixed', async () => {
    await settled(lb, await putKeys(etcd, lb, { 'services/allow/ip_allow': `${FRIEND}, not-an-address`, 'tcp-services/deny/ip_deny': `${FRIEND}/33` }));
    await waitFor(async () => (await getFrom(lb.httpPort, FRIEND, 'allow.test')).status === 403, { timeoutMs: 5000, what: 'the allow service to close' });
    await waitFor(async () => (await tcpFrom(tcpDeny, CLIENT, 'hello')) === '', { timeoutMs: 5000, what: 'the deny TCP service to close' });
    const reasons = logsWithMsg(lb, 'entry rejected').map((l) => `${String(l.key)}: ${String(l.reason)}`);
    expect(reasons).toContainEqual(expect.stringMatching(/services\/allow\/ip_allow: "not-an-address" is not an IPv4 .*closed \(403 to every request\)/));
    expect(reasons).toContainEqual(expect.stringMatching(/tcp-services\/deny\/ip_deny: .*closed \(every connection refused\)/));
    // The other services keep serving.
    expect((await getFrom(lb.httpPort, CLIENT, 'deny.test')).backend).toBe('deny');

    await settled(lb, await putKeys(etcd, lb, { 'services/allow/ip_allow': FRIEND, 'tcp-services/deny/ip_deny': FRIEND }));
    await waitFor(async () => (await getFrom(lb.httpPort, FRIEND, 'allow.test')).backend === 'allow', { timeoutMs: 5000, what: 'the allow service to open' });
    await waitFor(async () => (await tcpFrom(tcpDeny, CLIENT, 'hello')) === 'hello', { timeoutMs: 5000, what: 'the deny TCP service to open' });
  });
});

describe('ip_allow behind the PROXY protocol', () => {
  let lb: TestEdgelb;
  let tcpPort: number;
  const GET = 'GET /who HTTP/1.1\r\nHost: allow.test\r\nConnection: close\r\n\r\n';

  beforeAll(async () => {
    tcpPort = await freePort();
    // Not startLbWith: its readiness probe is a plain request, which this listener refuses.
    lb = await startTestEdgelb(etcd, { KONTENA_LB_ACCEPT_PROXY: 'true' });
    await settled(
      lb,
      await putKeys(etcd, lb, {
        'services/allow/virtual_hosts': 'allow.test',
        'services/allow/ip_allow': '203.0.113.7',
        'services/allow/upstreams/one': b.allow.address,
        'tcp-services/echo/external_port': String(tcpPort),
        'tcp-services/echo/ip_allow': '192.0.2.99',
        'tcp-services/echo/upstreams/one': echo.address,
      }),
    );
    await waitFor(async () => (await rawExchange(lb.httpPort, proxyV1Header('203.0.113.7', 50000, lb.httpPort) + GET)).status === 200, {
      timeoutMs: 10_000,
      what: 'HAProxy to answer the allowed client behind a PROXY header',
    });
  });

  afterAll(async () => {
    await lb?.stopAll();
  });

  it('HTTP: the address the PROXY header names is the one checked, not the connection', async () => {
    expect((await rawExchange(lb.httpPort, proxyV1Header('203.0.113.7', 50001, lb.httpPort) + GET)).status).toBe(200);
    expect((await rawExchange(lb.httpPort, proxyV1Header('203.0.113.8', 50002, lb.httpPort) + GET)).status).toBe(403);
  });

  it('TCP: likewise, the client the PROXY header names is forwarded, another closed', async () => {
    expect(await tcpFrom(tcpPort, CLIENT, 'hello', proxyV1Header('192.0.2.99', 53000, tcpPort))).toBe('hello');
    expect(await tcpFrom(tcpPort, CLIENT, 'hello', proxyV1Header('192.0.2.98', 53001, tcpPort))).toBe('');
  });
});
