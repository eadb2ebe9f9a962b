import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../src/admin/status.js';
import type { Backend } from '../support/backend.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import type { Reply } from '../support/http.js';
import { closeBackends, putKeys, settled, startBackends, startEchoServer, startLbWith, tcpRoundTrip, type EchoServer } from '../support/lb.js';
import { getFrom as getFromAddress, runtimeCommand as runtimeCommandAt } from '../support/limit-clients.js';
import { freePort } from '../support/ports.js';
import { peersFlagsHave, RESYNC_FINISHED, RESYNC_LOCAL } from '../../scripts/lib/show-peers.js';
import { waitFor } from '../support/wait.js';

// rate_limit and conn_limit (issue 15) through a real HAProxy: exact 429s with Retry-After over
// the rate, the counter still there after a structural reload (the local peers section), held
// requests and held TCP connections over conn_limit, and an invalid conn_limit closing its service.
// Every client is its own loopback address (127.0.0.0/8 is all local), so the readiness polls of
// one test never count against the client another test measures.

const RATED = 'rated.test';
const HELD = 'held.test';
const SHUT = 'shut.test';
const LOOSE = 'loose.test';

let etcd: EtcdServer;
let lb: TestEdgelb;
let b: Record<'rated' | 'loose' | 'other', Backend>;
let holder: Holder;
let echo: EchoServer;
let tcpPort: number;
let shutPort: number;
let nextClient = 10;

/** A fresh client address, never used before in this file. */
const freshClient = () => `127.0.1.${nextClient++}`;

/** One GET from `from` (a loopback address) with the Host header; never keeps the connection. */
const getFrom = (from: string, host: string, urlPath = '/'): Promise<Reply> => getFromAddress(lb.httpPort, from, host, urlPath);

/** Waits until the service answers 200 from its backend, each poll from a fresh client address. */
async function ready(host: string, backend: string): Promise<void> {
  await waitFor(async () => (await getFrom(freshClient(), host)).backend === backend, { timeoutMs: 10_000, what: `${host} to reach ${backend}` });
}

/** One command to HAProxy's runtime API (the admin socket in the state dir), its whole answer. */
const runtimeCommand = (command: string): Promise<string> => runtimeCommandAt(path.join(lb.config.stateDir, 'haproxy.sock'), command);

/**
 * Waits until the running worker's peers flags have `mask`. HAProxy 2.6 hands its tables to the
 * next worker on a reload only once its own resync has finished (RESYNC_FINISHED): with no
 * remote peer, its fixed 5 s resync timeout after the worker started.
 */
async function peersSynced(mask = RESYNC_FINISHED): Promise<void> {
  await waitFor(async () => peersFlagsHave(await runtimeCommand('show peers'), mask), {
    timeoutMs: 15_000,
    intervalMs: 200,
    what: `the worker's peers flags to have 0x${mask.toString(16)}`,
  });
}

/** A backend that answers `/hold` only when released, and anything else at once. */
interface Holder {
  readonly address: string;
  held(): number;
  release(): void;
  close(): Promise<void>;
}

async function startHolder(): Promise<Holder> {
  const waiting: http.ServerResponse[] = [];
  const answer = (res: http.ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ backend: 'held' }));
  const server = http.createServer((req, res) => (req.url === '/hold' ? waiting.push(res) : answer(res)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => waiting.length,
    release: () => {
      for (const res of waiting.splice(0)) answer(res);
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A TCP connection from `from` that has echoed once, left open. */
async function openEchoed(port: number, from: string): Promise<net.Socket> {
  const socket = net.createConnection({ host: '127.0.0.1', port, localAddress: from });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the echo')));
    socket.once('data', () => resolve());
    socket.once('connect', () => socket.write('ping'));
  });
  return socket;
}

/** Whether a connection from `from` is closed without an echo (refused by conn_limit). */
async function refused(port: number, from: string): Promise<boolean> {
  return openEchoed(port, from).then(
    (socket) => {
      socket.destroy();
      return false;
    },
    () => true,
  );
}

beforeAll(async () => {
  etcd = await startEtcd();
  b = await startBackends('rated', 'loose', 'other');
  holder = await startHolder();
  echo = await startEchoServer();
  tcpPort = await freePort();
  shutPort = await freePort();
  lb = await startLbWith(etcd, {
    'services/rated/virtual_hosts': RATED,
    'services/rated/rate_limit': '5/1m',
    'services/rated/upstreams/one': b.rated.address,
    'services/held/virtual_hosts': HELD,
    'services/held/conn_limit': '2',
    'services/held/upstreams/one': holder.address,
    'services/shut/virtual_hosts': SHUT,
    'services/shut/conn_limit': 'lots',
    'services/shut/upstreams/one': b.other.address,
    'services/loose/virtual_hosts': LOOSE,
    'services/loose/rate_limit': 'lots/1s',
    'services/loose/upstreams/one': b.loose.address,
    'tcp-services/db/external_port': String(tcpPort),
    'tcp-services/db/conn_limit': '2',
    'tcp-services/db/upstreams/one': echo.address,
    'tcp-services/closed/external_port': String(shutPort),
    'tcp-services/closed/conn_limit': '0',
    'tcp-services/closed/upstreams/one': echo.address,
  });
  await Promise.all([ready(RATED, 'rated'), ready(HELD, 'held'), ready(LOOSE, 'loose')]);
  await waitFor(() => tcpRoundTrip(tcpPort, Buffer.from('ready')), { timeoutMs: 10_000, what: 'the TCP service to echo' });
});

afterAll(async () => {
  await lb?.stopAll();
  await closeBackends(b);
  await holder?.close();
  await echo?.close();
  await etcd?.stop();
});

describe('rate_limit', () => {
  it('answers exactly the requests over the limit with 429 and Retry-After, and keeps counting across a reload', async () => {
    await peersSynced();
    const client = freshClient();
    const replies: Reply[] = [];
    for (let i = 0; i < 8; i++) replies.push(await getFrom(client, RATED));
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    expect(replies.slice(0, 5).every((r) => r.backend === 'rated')).toBe(true);
    for (const reply of replies.slice(5)) {
      expect(reply.headers['retry-after']).toBe('60');
      expect(reply.backend).toBeUndefined();
    }
    expect((await getFrom(freshClient(), RATED)).status).toBe(200);

    // A structural change: a new service, so a reload (a new HAProxy worker).
    const reloads = lb.controller.status().counters.reloads;
    await settled(lb, await putKeys(etcd, lb, { 'services/other/virtual_hosts': 'other.test', 'services/other/upstreams/one': b.other.address }));
    expect(lb.controller.status().counters.reloads).toBe(reloads + 1);
    await ready('other.test', 'other');

    // The new worker learned the old one's tables (or gave up: then the counts below are wrong).
    await peersSynced(RESYNC_LOCAL);
    // It inherited the counter: the same client is still over the limit, a new one is not...
    expect((await getFrom(client, RATED)).status).toBe(429);
    expect((await getFrom(freshClient(), RATED)).status).toBe(200);
    // ...and its count went on from the old worker's 8 requests.
    const table = await runtimeCommand('show table http-rated');
    expect(table).toMatch(new RegExp(`key=::ffff:${client.replaceAll('.', '[.]')} .*http_req_rate\\(60000\\)=9\\b`));
  });

  it('serves a service whose rate_limit is invalid without a limit, and reports the key', async () => {
    const client = freshClient();
    for (let i = 0; i < 8; i++) expect((await getFrom(client, LOOSE)).status).toBe(200);
    const rejection = lb.controller.status().rejected.find((r) => r.key === 'services/loose/rate_limit');
    expect(rejection?.reason).toMatch(/<requests>\/<period>.*using the default/);
  });
});

describe('conn_limit', () => {
  it('answers 429 to a client holding as many requests as the limit, and lets it in again when one ends', async () => {
    const client = freshClient();
    const held = [getFrom(client, HELD, '/hold'), getFrom(client, HELD, '/hold')];
    await waitFor(() => holder.held() === 2, { timeoutMs: 5000, what: 'two requests held at the backend' });
    const over = await getFrom(client, HELD);
    expect(over.status).toBe(429);
    expect(over.backend).toBeUndefined();
    // Another client is not affected.
    expect((await getFrom(freshClient(), HELD)).status).toBe(200);
    holder.release();
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    expect((await getFrom(client, HELD)).status).toBe(200);
  });

  it('refuses a TCP connection over the limit, and takes one again when another closes', async () => {
    const client = freshClient();
    const open = [await openEchoed(tcpPort, client), await openEchoed(tcpPort, client)];
    try {
      expect(await refused(tcpPort, client)).toBe(true);
      expect(await refused(tcpPort, freshClient())).toBe(false);
      open.pop()?.destroy();
      await waitFor(async () => !(await refused(tcpPort, client)), { timeoutMs: 5000, what: 'a third connection once one closed' });
    } finally {
      for (const socket of open) socket.destroy();
    }
  });

  it('closes a service whose conn_limit is invalid: 403 for HTTP, refused for TCP', async () => {
    const reply = await getFrom(freshClient(), SHUT);
    expect(reply.status).toBe(403);
    expect(reply.backend).toBeUndefined();
    expect(await refused(shutPort, freshClient())).toBe(true);
    const reasons = Object.fromEntries(lb.controller.status().rejected.map((r) => [r.key, r.reason]));
    expect(reasons['services/shut/conn_limit']).toMatch(/closed \(403/);
    expect(reasons['tcp-services/closed/conn_limit']).toMatch(/refused/);
  });
});

describe('/status', () => {
  it("lists each service's limits, and which are closed", async () => {
    const report = await new Promise<StatusReport>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: lb.config.adminPort, path: '/status', timeout: 5000 }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as StatusReport));
        })
        .on('error', reject);
    });
    const limits = Object.fromEntries(report.services.map((s) => [`${s.kind}:${s.name}`, s.limits]));
    expect(limits).toMatchObject({
      'http:rated': { rate: { requests: 5, periodMs: 60_000 }, connections: null, closed: false },
      'http:held': { rate: null, connections: 2, closed: false },
      'http:shut': { rate: null, connections: null, closed: true },
      'http:loose': null,
      'tcp:db': { rate: null, connections: 2, closed: false },
      'tcp:closed': { rate: null, connections: null, closed: true },
    });
  });
});
