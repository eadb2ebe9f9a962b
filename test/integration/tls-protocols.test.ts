import { randomUUID } from 'node:crypto';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../support/backend.js';
import { makeLeaf, removeCertFiles, type LeafCert } from '../support/certs.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { portIsFree } from '../../scripts/lib/local-stack.js';
import { closeBackends, startBackends, startLbWith } from '../support/lb.js';
import { expectServedCert, handshake, http2Get, httpsGet, oldTlsClient } from '../support/tls.js';

// What the HTTPS listener speaks: ALPN and HTTP/2, protocol versions and ciphers, redirects to
// HTTPS, HSTS, and the X-Forwarded-* headers backends receive.

let etcd: EtcdServer;
let b: Record<'a', Backend>;

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('a');
});

afterAll(async () => {
  await closeBackends(b);
  await etcd?.stop();
  removeCertFiles();
});

async function lbWith(entries: Record<string, string>, overrides: Record<string, string> = {}): Promise<TestEdgelb> {
  return startLbWith(etcd, entries, overrides);
}

/** The request the backend received with this unique path. */
function received(path: string) {
  const request = b.a.requests.find((r) => r.url === path);
  expect(request, `backend a should have received ${path}`).toBeDefined();
  return request!;
}

describe('HTTP/2 (KONTENA_LB_HTTP2 default: true)', () => {
  let lb: TestEdgelb;
  let leaf: LeafCert;

  beforeAll(async () => {
    leaf = await makeLeaf({ names: ['h2.test'] });
    lb = await lbWith({
      'services/web/virtual_hosts': 'h2.test',
      'services/web/upstreams/one': b.a.address,
      'certs/h2': leaf.bundlePem,
    });
    await expectServedCert(lb.config.httpsPort, 'h2.test', leaf);
  });
  afterAll(async () => {
    await lb?.stopAll();
  });

  it('ALPN negotiates h2 when offered, and http/1.1 for clients that offer only that', async () => {
    const port = lb.config.httpsPort;
    expect((await handshake(port, { servername: 'h2.test', ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('h2');
    expect((await handshake(port, { servername: 'h2.test', ALPNProtocols: ['http/1.1'] })).alpn).toBe('http/1.1');
    const h1 = await httpsGet(port, { servername: 'h2.test', path: '/over-h1' });
    expect(h1.status).toBe(200);
    expect(h1.alpn).toBe(false); // node:https offers no ALPN at all; HTTP/1.1 is what it gets
    expect(h1.backendUrl).toBe('/over-h1');
  });

  it('refuses TLS 1.0 (KONTENA_LB_SSL_MIN_VERSION default: TLSv1.2)', async () => {
    await expect(handshake(lb.config.httpsPort, { servername: 'h2.test', ...oldTlsClient('TLSv1') })).rejects.toMatchObject({
      code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
    });
  });

  it('a request over HTTP/2 is answered by the backend', async () => {
    const path = `/over-h2/${randomUUID()}?q=1`;
    const reply = await http2Get(lb.config.httpsPort, { servername: 'h2.test', path });
    expect(reply.alpn).toBe('h2');
    expect(reply.status).toBe(200);
    expect(reply.backend).toBe('a');
    expect(reply.backendUrl).toBe(path);
    const request = received(path);
    expect(request.headers.host).toBe('h2.test');
    expect(request.headers['x-forwarded-proto']).toBe('https');
  });
});

describe('KONTENA_LB_HTTP2=false and KONTENA_LB_SSL_CIPHERS', () => {
  let lb: TestEdgelb;
  let leaf: LeafCert;
  let port: number;

  beforeAll(async () => {
    leaf = await makeLeaf({ names: ['narrow.test'], keyType: 'rsa' });
    lb = await lbWith(
      {
        'services/web/virtual_hosts': 'narrow.test',
        'services/web/upstreams/one': b.a.address,
        'certs/narrow': leaf.bundlePem,
      },
      { KONTENA_LB_HTTP2: 'false', KONTENA_LB_SSL_CIPHERS: 'ECDHE-RSA-AES256-GCM-SHA384' },
    );
    port = lb.config.httpsPort;
    await expectServedCert(port, 'narrow.test', leaf);
  });
  afterAll(async () => {
    await lb?.stopAll();
  });

  it('ALPN gives http/1.1 to a client offering h2 and http/1.1, and HTTPS/1.1 works', async () => {
    expect((await handshake(port, { servername: 'narrow.test', ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('http/1.1');
    const reply = await httpsGet(port, { servername: 'narrow.test', path: '/h1-only' });
    expect(reply.status).toBe(200);
    expect(reply.backendUrl).toBe('/h1-only');
  });

  it('an HTTP/2-only client gets no HTTP/2', async () => {
    // No ALPN protocol in common: the handshake completes without one...
    expect((await handshake(port, { servername: 'narrow.test', ALPNProtocols: ['h2'] })).alpn).toBe(false);
    // ...and a client that speaks HTTP/2 anyway (prior knowledge) must not be answered over it:
    // with HTTP/2 off, the listener should speak HTTP/1.1 only. (HAProxy's HTTP/1 mux upgrades a
    // connection to HTTP/2 when it sees the HTTP/2 preface unless the bind line says `proto h1`.)
    let outcome: string;
    try {
      const reply = await http2Get(port, { servername: 'narrow.test', path: '/h2-anyway', timeoutMs: 3000 });
      outcome = `answered over HTTP/2: ${reply.status} by backend ${reply.backend}`;
    } catch (error) {
      outcome = `failed: ${(error as Error).message}`;
    }
    expect(outcome).toMatch(/^failed/);
  });

  it('a TLS 1.2 cipher outside KONTENA_LB_SSL_CIPHERS is refused; the configured one is used', async () => {
    await expect(handshake(port, { servername: 'narrow.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).rejects.toMatchObject({
      code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
    });
    await expect(
      handshake(port, { servername: 'narrow.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256' }),
    ).rejects.toMatchObject({ code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' });
    const ok = await handshake(port, { servername: 'narrow.test', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384' });
    expect(ok.protocol).toBe('TLSv1.2');
    expect(ok.cipher).toBe('ECDHE-RSA-AES256-GCM-SHA384');
    // TLS 1.3 suites are not governed by the TLS 1.2 cipher list.
    expect((await handshake(port, { servername: 'narrow.test' })).protocol).toBe('TLSv1.3');
  });

  it('TLS 1.1 is refused by the server (the same client gets TLS 1.1 from a server that allows it)', async () => {
    const tls11 = oldTlsClient('TLSv1.1');
    // Control: this client really offers TLS 1.1.
    const server = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }, (s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const control = await handshake((server.address() as AddressInfo).port, { servername: 'narrow.test', ...tls11 });
      expect(control.protocol).toBe('TLSv1.1');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await expect(handshake(port, { servername: 'narrow.test', ...tls11 })).rejects.toMatchObject({ code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
  });
});

describe('KONTENA_LB_SSL_MIN_VERSION', () => {
  let leaf: LeafCert;
  beforeAll(async () => {
    leaf = await makeLeaf({ names: ['old.test'], keyType: 'rsa' });
  });
  const entries = () => ({ 'services/web/virtual_hosts': 'old.test', 'services/web/upstreams/one': b.a.address, 'certs/old': leaf.bundlePem });

  it('TLSv1.0: TLS 1.0 and 1.1 clients complete a handshake and are served, with the default cipher list (Mozilla old)', async () => {
    const lb = await lbWith(entries(), { KONTENA_LB_SSL_MIN_VERSION: 'TLSv1.0' });
    try {
      const port = lb.config.httpsPort;
      await expectServedCert(port, 'old.test', leaf);
      const tls10 = await handshake(port, { servername: 'old.test', ...oldTlsClient('TLSv1') });
      expect(tls10.protocol).toBe('TLSv1');
      expect(tls10.cipher).toMatch(/^ECDHE-RSA-AES(128|256)-SHA$/);
      expect((await handshake(port, { servername: 'old.test', ...oldTlsClient('TLSv1.1') })).protocol).toBe('TLSv1.1');
      const reply = await httpsGet(port, { servername: 'old.test', path: '/over-tls1.0', ...oldTlsClient('TLSv1') });
      expect(reply.status).toBe(200);
      expect(reply.backendUrl).toBe('/over-tls1.0');
      // Modern clients still get TLS 1.3, and TLS 1.2 an AEAD cipher first.
      expect((await handshake(port, { servername: 'old.test' })).protocol).toBe('TLSv1.3');
      expect((await handshake(port, { servername: 'old.test', maxVersion: 'TLSv1.2' })).cipher).toBe('ECDHE-RSA-AES128-GCM-SHA256');
    } finally {
      await lb.stopAll();
    }
  });

  it('TLSv1.3: a TLS 1.2 client is refused, a TLS 1.3 one served', async () => {
    const lb = await lbWith(entries(), { KONTENA_LB_SSL_MIN_VERSION: 'TLSv1.3' });
    try {
      const port = lb.config.httpsPort;
      await expectServedCert(port, 'old.test', leaf);
      expect((await handshake(port, { servername: 'old.test' })).protocol).toBe('TLSv1.3');
      await expect(handshake(port, { servername: 'old.test', maxVersion: 'TLSv1.2' })).rejects.toMatchObject({ code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
    } finally {
      await lb.stopAll();
    }
  });
});

describe('ssl_redirect, hsts and X-Forwarded-* headers', () => {
  let lb: TestEdgelb;
  let httpsPort: number;

  beforeAll(async () => {
    const leaf = await makeLeaf({ names: ['secure.test', 'plain.test'] });
    lb = await lbWith({
      'services/secure/virtual_hosts': 'secure.test',
      'services/secure/upstreams/one': b.a.address,
      'services/secure/ssl_redirect': 'true',
      'services/secure/hsts': '31536000',
      'services/plain/virtual_hosts': 'plain.test',
      'services/plain/upstreams/one': b.a.address,
      'services/plain/hsts': '600',
      'certs/site': leaf.bundlePem,
    });
    httpsPort = lb.config.httpsPort;
    await expectServedCert(httpsPort, 'secure.test', leaf);
  });
  afterAll(async () => {
    await lb?.stopAll();
  });

  it('ssl_redirect=true: plain HTTP gets a 301 to the HTTPS port with path and query kept; HTTPS is served', async () => {
    const path = '/some/path?x=1&y=two%20words&z';
    const plain = await get(lb.httpPort, path, 'secure.test');
    expect(plain.status).toBe(301);
    expect(plain.headers.location).toBe(`https://secure.test:${httpsPort}${path}`);
    expect(plain.headers['strict-transport-security']).toBeUndefined();

    // The Host header's port and case do not leak into the redirect.
    const withPort = await get(lb.httpPort, '/p', `Secure.Test:${lb.httpPort}`);
    expect(withPort.status).toBe(301);
    expect(withPort.headers.location).toBe(`https://secure.test:${httpsPort}/p`);

    const secure = await httpsGet(httpsPort, { servername: 'secure.test', path });
    expect(secure.status).toBe(200);
    expect(secure.backendUrl).toBe(path);

    // Another service without ssl_redirect is served over plain HTTP.
    const other = await get(lb.httpPort, '/no-redirect', 'plain.test');
    expect(other.status).toBe(200);
    expect(other.backendUrl).toBe('/no-redirect');
  });

  it('hsts=<n> sends Strict-Transport-Security max-age=<n> over HTTPS only', async () => {
    const secure = await httpsGet(httpsPort, { servername: 'secure.test', path: '/hsts' });
    expect(secure.headers['strict-transport-security']).toBe('max-age=31536000');
    const plainTls = await httpsGet(httpsPort, { servername: 'plain.test', path: '/hsts' });
    expect(plainTls.headers['strict-transport-security']).toBe('max-age=600');
    const h2 = await http2Get(httpsPort, { servername: 'plain.test', path: '/hsts-h2' });
    expect(h2.headers['strict-transport-security']).toBe('max-age=600');
    const plainHttp = await get(lb.httpPort, '/hsts', 'plain.test');
    expect(plainHttp.status).toBe(200);
    expect(plainHttp.headers['strict-transport-security']).toBeUndefined();
  });

  it('backends receive X-Forwarded-Proto/Port/For for TLS and plain requests, overriding what the client sent', async () => {
    const overTls = `/xf/${randomUUID()}`;
    const spoofed = { 'x-forwarded-proto': 'http', 'x-forwarded-port': '1' };
    expect((await httpsGet(httpsPort, { servername: 'plain.test', path: overTls, headers: spoofed })).status).toBe(200);
    const tlsRequest = received(overTls);
    expect(tlsRequest.headers['x-forwarded-proto']).toBe('https');
    expect(tlsRequest.headers['x-forwarded-port']).toBe(String(httpsPort));
    expect(String(tlsRequest.headers['x-forwarded-for'])).toMatch(/(^|, )127\.0\.0\.1$/);

    const overH2 = `/xf-h2/${randomUUID()}`;
    expect((await http2Get(httpsPort, { servername: 'plain.test', path: overH2 })).status).toBe(200);
    expect(received(overH2).headers['x-forwarded-proto']).toBe('https');
    expect(received(overH2).headers['x-forwarded-port']).toBe(String(httpsPort));
    expect(received(overH2).headers['x-forwarded-for']).toBe('127.0.0.1');

    const plain = `/xf-plain/${randomUUID()}`;
    expect((await get(lb.httpPort, plain, 'plain.test')).status).toBe(200);
    expect(received(plain).headers['x-forwarded-proto']).toBe('http');
    expect(received(plain).headers['x-forwarded-port']).toBe(String(lb.httpPort));
    expect(received(plain).headers['x-forwarded-for']).toBe('127.0.0.1');
  });
});

// HTTPS on the standard port needs root (or CAP_NET_BIND_SERVICE) and a free port 443.
const can443 = await portIsFree(443);

describe.runIf(can443)('ssl_redirect with KONTENA_LB_HTTPS_PORT=443', () => {
  it('redirects to https://host/path: no port in the Location, whatever port the Host header names', async () => {
    const leaf = await makeLeaf({ names: ['secure.test'] });
    const lb = await lbWith(
      {
        'services/secure/virtual_hosts': 'secure.test',
        'services/secure/upstreams/one': b.a.address,
        'services/secure/ssl_redirect': 'true',
        'certs/site': leaf.bundlePem,
      },
      { KONTENA_LB_HTTPS_PORT: '443' },
    );
    try {
      await expectServedCert(443, 'secure.test', leaf);
      const plain = await get(lb.httpPort, '/p?q=1', 'secure.test');
      expect(plain.status).toBe(301);
      expect(plain.headers.location).toMatch(/^https:\/\/secure\.test(:443)?\/p\?q=1$/);
      // A client on a non-standard HTTP port sends it in Host; HTTPS is still on 443.
      const withPort = await get(lb.httpPort, '/p?q=1', `secure.test:${lb.httpPort}`);
      expect(withPort.status).toBe(301);
      expect(withPort.headers.location).toMatch(/^https:\/\/secure\.test(:443)?\/p\?q=1$/);
    } finally {
      await lb.stopAll();
    }
  });
});
