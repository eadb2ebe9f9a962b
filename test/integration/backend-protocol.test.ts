import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeCa, makeLeaf, type CertAuthority } from '../support/certs.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { waitFor } from '../support/wait.js';
import { expectBackendSet, putKeys, settled, startLbWith } from '../support/lb.js';

// backend_protocol (issue 15) through a real HAProxy: h2 (HTTP/2 in clear, prior knowledge) to a
// node:http2 server, gRPC-style with trailers, and https to a TLS instance with backend_verify=none.

let etcd: EtcdServer;
const running: TestEdgelb[] = [];
const closers: (() => Promise<void>)[] = [];

/** A cleartext HTTP/2 server (h2c, prior knowledge, as gRPC servers are): answers JSON naming itself and its HTTP version, and a grpc-status trailer. */
async function h2Backend(name: string): Promise<{ address: string; versions: string[] }> {
  const versions: string[] = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      versions.push('2.0');
      const grpc = headers['content-type'] === 'application/grpc';
      stream.respond({ ':status': 200, 'content-type': grpc ? 'application/grpc' : 'application/json' }, { waitForTrailers: grpc });
      if (grpc) stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' }));
      stream.end(grpc ? Buffer.concat(chunks) : JSON.stringify({ backend: name, url: headers[':path'] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, versions };
}

async function httpsBackend(name: string, issuer?: CertAuthority): Promise<{ address: string }> {
  const leaf = await makeLeaf({ names: ['backend.test'], ipAddresses: ['127.0.0.1'], issuer });
  const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const body = JSON.stringify({ backend: name, url: req.url, tls: true });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
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
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** One gRPC-style call over HTTP/2 in clear to the load balancer: the reply's body, status and trailers. */
function grpcCall(port: number, host: string, body: Buffer): Promise<{ status: number; body: Buffer; trailers: http2.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on('error', reject);
    const req = client.request({ ':method': 'POST', ':path': '/echo.Echo/Say', ':authority': host, 'content-type': 'application/grpc', te: 'trailers' });
    let status = 0;
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (headers) => {
      status = Number(headers[':status']);
    });
    req.on('trailers', (t) => {
      trailers = t;
    });
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      client.close();
      resolve({ status, body: Buffer.concat(chunks), trailers });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => reject(new Error('grpc call timed out')));
    req.end(body);
  });
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

describe('backend_protocol', () => {
  it('h2: HTTP/1.1 and HTTP/2 clients reach an h2c-only instance over HTTP/2, gRPC trailers included; an instance added at runtime speaks h2 too', async () => {
    const [a, b] = [await h2Backend('a'), await h2Backend('b')];
    const lb = await startLbWith(etcd, {
      'services/grpc/virtual_hosts': 'grpc.test',
      'services/grpc/backend_protocol': 'h2',
      'services/grpc/upstreams/one': a.address,
    });
    running.push(lb);
    const reply = await get(lb.httpPort, '/hello', 'grpc.test');
    expect(reply.status).toBe(200);
    expect(reply.backend).toBe('a');
    expect(a.versions.length).toBeGreaterThan(0);

    // A length-prefixed gRPC message, echoed back, with grpc-status in the trailers.
    const message = Buffer.concat([Buffer.from([0, 0, 0, 0, 5]), Buffer.from('hello')]);
    const call = await grpcCall(lb.httpPort, 'grpc.test', message);
    expect(call.status).toBe(200);
    expect(call.body.equals(message)).toBe(true);
    expect(call.trailers['grpc-status']).toBe('0');

    // `add server ... proto h2`: the runtime API takes it, no reload.
    const reloads = lb.controller.status().counters.reloads;
    await settled(lb, await putKeys(etcd, lb, { 'services/grpc/upstreams/two': b.address }));
    await expectBackendSet(lb, '/', 'grpc.test', ['a', 'b']);
    expect(lb.controller.status().counters.reloads).toBe(reloads);
    expect(b.versions.length).toBeGreaterThan(0);
  });

  it('https: TLS to the instance with backend_verify=none; without it the service is left out, not served unverified', async () => {
    const secure = await httpsBackend('secure');
    const lb = await startLbWith(etcd, {
      'services/tls/virtual_hosts': 'tls.test',
      'services/tls/backend_protocol': 'https',
      'services/tls/upstreams/one': secure.address,
    });
    running.push(lb);
    const refused = lb.controller.status();
    expect(JSON.stringify(refused)).toContain('unverified_backend_tls');
    expect((await get(lb.httpPort, '/', 'tls.test')).backend).toBeUndefined();

    await settled(lb, await putKeys(etcd, lb, { 'services/tls/backend_verify': 'none' }));
    const reply = await get(lb.httpPort, '/x', 'tls.test');
    expect(reply.status).toBe(200);
    expect(reply.backend).toBe('secure');
    // `add server ... ssl verify none`: a second TLS instance joins through the runtime API.
    const second = await httpsBackend('second');
    const reloads = lb.controller.status().counters.reloads;
    await settled(lb, await putKeys(etcd, lb, { 'services/tls/upstreams/two': second.address }));
    await expectBackendSet(lb, '/', 'tls.test', ['secure', 'second']);
    expect(lb.controller.status().counters.reloads).toBe(reloads);
    // Plain HTTP to the same TLS port fails: the traffic really is TLS.
    await settled(lb, await putKeys(etcd, lb, { 'services/tls/backend_protocol': 'http' }));
    expect((await get(lb.httpPort, '/x', 'tls.test')).status).toBeGreaterThanOrEqual(500);
  });

  it('verified TLS to a backend: backend_ca passes an instance its CA issued, and a runtime-added one; another CA gives 503', async () => {
    const [internal, other] = await Promise.all([makeCa('backend CA'), makeCa('another backend CA')]);
    const [one, two] = [await httpsBackend('one', internal), await httpsBackend('two', internal)];
    const lb = await startLbWith(etcd, {
      'backend-cas/internal': internal.certPem,
      'backend-cas/other': other.certPem,
      'services/tls/virtual_hosts': 'tls.test',
      'services/tls/backend_protocol': 'https',
      'services/tls/backend_ca': 'internal',
      'services/tls/upstreams/one': one.address,
    });
    running.push(lb);
    const reply = await get(lb.httpPort, '/v', 'tls.test');
    expect(reply.status).toBe(200);
    expect(reply.backend).toBe('one');
    // `add server ... ssl verify required ca-file <file>`: through the runtime API, no reload.
    const reloads = lb.controller.status().counters.reloads;
    await settled(lb, await putKeys(etcd, lb, { 'services/tls/upstreams/two': two.address }));
    await expectBackendSet(lb, '/', 'tls.test', ['one', 'two']);
    expect(lb.controller.status().counters.reloads).toBe(reloads);

    // The same instances checked against a CA that did not issue them: they fail their checks, 503.
    await settled(lb, await putKeys(etcd, lb, { 'services/tls/backend_ca': 'other' }));
    await waitFor(async () => (await get(lb.httpPort, '/', 'tls.test')).status === 503, { timeoutMs: 10_000, what: 'the unverifiable instances to give 503' });
    expect(JSON.stringify(lb.controller.status().rejected)).not.toContain('unverified_backend_tls');

    // A name with no bundle: 503 to every request, logged, never served unverified.
    await settled(lb, await putKeys(etcd, lb, { 'services/tls/backend_ca': 'missing' }));
    expect(lb.controller.status().rejected.find((r) => r.code === 'unusable_backend_ca')?.key).toBe('services/tls/backend_ca');
    expect((await get(lb.httpPort, '/', 'tls.test')).status).toBe(503);
  });
});
