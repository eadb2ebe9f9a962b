import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync, inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { closeBackends, expectRoute, logsWithMsg, putKeys, settled, startBackends, startLbWith } from '../support/lb.js';
import { request } from '../support/requests.js';
import { waitFor } from '../support/wait.js';

// request_headers and response_headers through a real HAProxy: what the instance receives and
// what the client gets, values exactly as written (a '%[src]' stays text); an invalid line is
// logged with its key and the service is served without that key's changes. CORS preflights and
// requests as a browser sends them; compressed responses that decompress to the original.

const ODD = 'a#b "c" $HOME ${HOME} %[src] 50%';

let etcd: EtcdServer;
let lb: TestEdgelb;
let b: Record<'web' | 'api' | 'open', Backend>;
let text: http.Server;
let textPort: number;

// What the text instance serves: large enough for compression to matter, the same on every request.
const TEXT = Array.from({ length: 400 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join('');
const BINARY = Buffer.from(TEXT);

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** One request of any method to the load balancer, the body as bytes (not decoded). */
function send(method: string, host: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: lb.httpPort, method, path, headers: { host, ...headers }, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('web', 'api', 'open');
  text = http.createServer((req, res) => {
    const binary = req.url === '/binary';
    res.writeHead(200, { 'content-type': binary ? 'application/octet-stream' : 'text/plain; charset=utf-8', 'content-length': TEXT.length });
    res.end(binary ? BINARY : TEXT);
  });
  await new Promise<void>((resolve) => text.listen(0, '127.0.0.1', resolve));
  textPort = (text.address() as AddressInfo).port;
  lb = await startLbWith(etcd, {
    'services/api/virtual_hosts': 'api.test',
    'services/api/upstreams/one': b.api.address,
    'services/api/cors_origins': 'https://app.example.com, http://localhost:3000',
    'services/api/cors_methods': 'GET,PUT,DELETE',
    'services/api/cors_headers': 'Content-Type,X-Requested-With',
    'services/open/virtual_hosts': 'open.test',
    'services/open/upstreams/one': b.open.address,
    'services/open/cors_origins': '*',
    'services/text/virtual_hosts': 'text.test',
    'services/text/upstreams/one': `127.0.0.1:${textPort}`,
    'services/text/compression': 'true',
    'services/web/virtual_hosts': 'web.test',
    'services/web/upstreams/one': b.web.address,
    'services/web/request_headers': `set X-Env production\nadd X-Odd ${ODD}\ndel X-Debug`,
    'services/web/response_headers': 'set Cache-Control no-cache, no-store\nadd X-Frame-Options DENY\ndel Date',
  });
  await expectRoute(lb, '/', 'web.test', 'web');
  await expectRoute(lb, '/', 'api.test', 'api');
  await expectRoute(lb, '/', 'open.test', 'open');
  await waitFor(async () => (await send('GET', 'text.test', '/')).status === 200, { timeoutMs: 5000, what: 'the text service to answer' });
});

afterAll(async () => {
  await lb?.stopAll();
  await closeBackends(b);
  await new Promise((resolve) => text?.close(resolve));
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

describe('CORS', () => {
  const preflight = (host: string, origin: string) =>
    send('OPTIONS', host, '/data', {
      origin,
      'access-control-request-method': 'PUT',
      'access-control-request-headers': 'content-type',
      'user-agent': 'Mozilla/5.0',
      accept: '*/*',
    });

  it('a preflight from an allowed origin is answered by HAProxy: 204 with the CORS headers, never forwarded', async () => {
    const before = b.api.requests.length;
    const reply = await preflight('api.test', 'https://app.example.com');
    expect(reply.status).toBe(204);
    expect(reply.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(reply.headers['access-control-allow-methods']).toBe('GET,PUT,DELETE');
    expect(reply.headers['access-control-allow-headers']).toBe('Content-Type,X-Requested-With');
    expect(reply.headers['access-control-max-age']).toBe('600');
    expect(reply.headers.vary).toMatch(/\bOrigin\b/);
    expect((await preflight('api.test', 'http://localhost:3000')).headers['access-control-allow-origin']).toBe('http://localhost:3000');
    expect(b.api.requests.length).toBe(before);
  });

  it('a preflight from any other origin gets 403 without CORS headers, and is not forwarded either', async () => {
    const before = b.api.requests.length;
    for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.test', 'http://app.example.com', 'null']) {
      const reply = await preflight('api.test', origin);
      expect(reply.status, origin).toBe(403);
      expect(reply.headers['access-control-allow-origin']).toBeUndefined();
    }
    expect(b.api.requests.length).toBe(before);
  });

  it('the actual request: the allowed origin is named in Access-Control-Allow-Origin with Vary: Origin; another origin is not', async () => {
    const allowed = await send('GET', 'api.test', '/data', { origin: 'https://app.example.com' });
    expect(allowed.status).toBe(200);
    expect(JSON.parse(allowed.body.toString()).backend).toBe('api');
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(allowed.headers.vary).toMatch(/\bOrigin\b/);
    const other = await send('GET', 'api.test', '/data', { origin: 'https://evil.example.com' });
    expect(other.status).toBe(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expect(other.headers.vary).toMatch(/\bOrigin\b/);
    // An ordinary OPTIONS (no preflight headers) reaches the instance.
    expect(JSON.parse((await send('OPTIONS', 'api.test', '/data')).body.toString()).backend).toBe('api');
  });

  it('cors_origins=*: every origin, as *, and nothing for a request without Origin', async () => {
    const reply = await preflight('open.test', 'https://anyone.example.net');
    expect(reply.status).toBe(204);
    expect(reply.headers['access-control-allow-origin']).toBe('*');
    expect(reply.headers['access-control-allow-methods']).toBe('GET,HEAD,POST,PUT,PATCH,DELETE');
    expect(reply.headers['access-control-allow-headers']).toBe('Content-Type,Authorization');
    expect((await send('GET', 'open.test', '/', { origin: 'https://anyone.example.net' })).headers['access-control-allow-origin']).toBe('*');
    expect((await send('GET', 'open.test', '/')).headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('compression', () => {
  it('gzip and deflate responses decompress to exactly what the instance sent', async () => {
    const gzip = await send('GET', 'text.test', '/', { 'accept-encoding': 'gzip' });
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(gzip.body.length).toBeLessThan(TEXT.length / 4);
    expect(gunzipSync(gzip.body).toString()).toBe(TEXT);
    const deflate = await send('GET', 'text.test', '/', { 'accept-encoding': 'deflate' });
    expect(deflate.headers['content-encoding']).toBe('deflate');
    expect(inflateSync(deflate.body).toString()).toBe(TEXT);
  });

  it('a client without Accept-Encoding, and a type that is not text, get the response as sent', async () => {
    const plain = await send('GET', 'text.test', '/');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toBe(TEXT);
    const binary = await send('GET', 'text.test', '/binary', { 'accept-encoding': 'gzip' });
    expect(binary.headers['content-encoding']).toBeUndefined();
    expect(binary.body.equals(BINARY)).toBe(true);
  });

  it('a service without compression is never compressed', async () => {
    expect((await send('GET', 'api.test', '/', { 'accept-encoding': 'gzip' })).headers['content-encoding']).toBeUndefined();
  });
});
