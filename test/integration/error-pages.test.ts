import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEMPLATES_DIR } from '../../src/render/render.js';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { closeBackends, expectRoute, startBackends, startLbWith } from '../support/lb.js';
import { rawExchange, request, type RawReply } from '../support/requests.js';
import { waitFor } from '../support/wait.js';

// The branded error pages edgelb ships (templates/errors/*.http), as clients receive them from
// HAProxy: each status provoked for real, and the files themselves checked to be well-formed.

const PAGES = {
  400: 'Bad request',
  408: 'Request timed out',
  502: 'Bad gateway',
  503: 'Service unavailable',
  504: 'Gateway timeout',
} as const;
const ERRORS_DIR = path.join(TEMPLATES_DIR, 'errors');

/** A TCP server that answers every connection with `reply` (or nothing when undefined). */
async function startRawServer(reply: string | undefined) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (reply !== undefined) socket.once('data', () => socket.end(reply));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function expectPage(reply: { status: number; headers?: Record<string, unknown>; body: string }, status: keyof typeof PAGES) {
  expect(reply.status).toBe(status);
  expect(reply.body).toMatch(/^<!DOCTYPE html>/);
  expect(reply.body).toContain(`<title>${status} ${PAGES[status]}</title>`);
  expect(reply.body).toContain('<footer>edgelb</footer>');
}

function headerOf(raw: RawReply, name: string): string | undefined {
  return new RegExp(`^${name}: *(.*)$`, 'im').exec(raw.head)?.[1]?.trim();
}

describe('error page files', () => {
  it.each(Object.keys(PAGES))('%s.http is a complete HTTP response with the right status and length', (code) => {
    const text = readFileSync(path.join(ERRORS_DIR, `${code}.http`), 'utf8');
    const split = text.indexOf('\r\n\r\n');
    expect(split).toBeGreaterThan(0);
    const head = text.slice(0, split);
    const body = text.slice(split + 4);
    expect(head).toMatch(new RegExp(`^HTTP/1\\.[01] ${code} [A-Za-z -]+\r\n`));
    expect(head).toContain('Content-Type: text/html; charset=utf-8');
    expect(Number(/Content-Length: ([0-9]+)/.exec(head)?.[1])).toBe(Buffer.byteLength(body));
    expect(body).toContain(`<h1><span class="code">${code}</span> ${PAGES[Number(code) as keyof typeof PAGES]}</h1>`);
  });

  it('ships a page for every status the template names', () => {
    const template = readFileSync(path.join(TEMPLATES_DIR, 'haproxy.cfg.hbs'), 'utf8');
    const named = [...template.matchAll(/errorfile ([0-9]{3}) /g)].map((m) => m[1]).sort();
    expect(named).toEqual(Object.keys(PAGES).sort());
    expect(
      readdirSync(ERRORS_DIR)
        .filter((f) => f.endsWith('.http'))
        .sort(),
    ).toEqual(named.map((c) => `${c}.http`));
  });
});

describe('error pages through HAProxy', () => {
  let etcd: EtcdServer;
  let lb: TestEdgelb;
  let b: Record<'ok', Backend>;
  let garbage: Awaited<ReturnType<typeof startRawServer>>;
  let silent: Awaited<ReturnType<typeof startRawServer>>;

  beforeAll(async () => {
    etcd = await startEtcd();
    b = await startBackends('ok');
    garbage = await startRawServer('this is not HTTP\r\n\r\n');
    silent = await startRawServer(undefined);
    lb = await startLbWith(
      etcd,
      {
        'services/ok/virtual_hosts': 'ok.foo.com',
        'services/ok/upstreams/one': b.ok.address,
        'services/broken/virtual_hosts': 'broken.foo.com',
        'services/broken/upstreams/one': garbage.address,
        'services/slow/virtual_hosts': 'slow.foo.com',
        'services/slow/custom_settings': 'timeout server 500ms',
        'services/slow/upstreams/one': silent.address,
        'services/empty/virtual_hosts': 'empty.foo.com',
        'services/deny/virtual_hosts': 'deny.foo.com',
        'services/deny/custom_settings': 'http-request deny deny_status 400 if { path /400 }\nhttp-request deny deny_status 408 if { path /408 }',
        'services/deny/upstreams/one': b.ok.address,
      },
      {
        // Short enough for the 408 test to run in about a second.
        KONTENA_LB_CUSTOM_SETTINGS: 'timeout http-request 700ms',
      },
    );
    // Every instance takes traffic once its first health check (a TCP connect) has passed.
    await expectRoute(lb, '/', 'ok.foo.com', 'ok');
    await waitFor(async () => (await request(lb.httpPort, { host: 'broken.foo.com' })).status === 502, {
      timeoutMs: 5000,
      what: 'the broken service to be up',
    });
    await waitFor(async () => (await request(lb.httpPort, { host: 'slow.foo.com' })).status === 504, { timeoutMs: 5000, what: 'the slow service to be up' });
    await waitFor(async () => (await request(lb.httpPort, { path: '/400', host: 'deny.foo.com' })).status === 400, {
      timeoutMs: 5000,
      what: 'the deny service to be up',
    });
    b.ok.requests.length = 0;
  });

  afterAll(async () => {
    await lb?.stopAll();
    await closeBackends(b);
    await garbage?.close();
    await silent?.close();
    await etcd?.stop();
  });

  // HAProxy 2.6 answers a request its HTTP/1 parser rejects, or one that does not arrive within
  // `timeout http-request`, from the connection layer with its built-in page, before any
  // errorfile applies (haproxy/haproxy#3032, fixed in 3.2). The status is right; the branded
  // 400/408 pages reach clients where HAProxy answers from a proxy (a rule, or HAProxy >= 3.2).
  it('400 for a request HAProxy cannot parse', async () => {
    const reply = await rawExchange(lb.httpPort, 'GET / HTTP/1.1\r\nHost: ok.foo.com\r\nthis line is no header\r\n\r\n');
    expect(reply.status).toBe(400);
    expect(b.ok.requests).toHaveLength(0);
  });

  it('408 for a request that does not arrive in time', async () => {
    const reply = await rawExchange(lb.httpPort, 'GET / HTTP/1.1\r\nHost: ok.foo.com\r\n');
    expect(reply.status).toBe(408);
  });

  it('the branded 400 and 408 pages when a rule answers with those statuses', async () => {
    const bad = await rawExchange(lb.httpPort, 'GET /400 HTTP/1.1\r\nHost: deny.foo.com\r\nConnection: close\r\n\r\n');
    expectPage(bad, 400);
    expect(headerOf(bad, 'content-type')).toBe('text/html; charset=utf-8');
    expectPage(await request(lb.httpPort, { path: '/408', host: 'deny.foo.com' }), 408);
  });

  it('502 when the backend answers something that is not HTTP', async () => {
    expectPage(await request(lb.httpPort, { host: 'broken.foo.com' }), 502);
  });

  it('503 when the service has no instance', async () => {
    const reply = await request(lb.httpPort, { host: 'empty.foo.com' });
    expectPage(reply, 503);
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
  });

  it('504 when the backend does not answer in time', async () => {
    expectPage(await request(lb.httpPort, { host: 'slow.foo.com' }), 504);
  });

  it('and the service next to them answers normally', async () => {
    expect((await request(lb.httpPort, { host: 'ok.foo.com' })).backend).toBe('ok');
  });
});
