import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { startBackend, type Backend } from './backend.js';
import type { EtcdServer } from './etcd.js';
import { startTestEdgelb, type TestEdgelb, type TestEdgelbOptions } from './edgelb.js';
import { get, type Reply } from './http.js';
import { waitFor } from './wait.js';

/**
 * Helpers shared by the integration tests. They write through the etcd client directly so
 * each write returns its etcd revision, which lets a test wait until the controller has
 * applied exactly that revision instead of guessing with sleeps.
 */

/** Writes the keys (relative to the LB prefix) one after another; returns the last revision. */
/**
 * Writes `entries` in one etcd transaction (chunks of 100, under etcd's default of 128 operations),
 * so the controller sees them in one watch event: written one by one, a loaded machine could apply
 * in between and log what a half-written set gives (a certificate missing, a service without
 * instances), which tests asserting on logs would then count.
 */
export async function putKeys(etcd: EtcdServer, lb: TestEdgelb, entries: Record<string, string>): Promise<bigint> {
  const all = Object.entries(entries);
  let revision = 0n;
  for (let i = 0; i < all.length; i += 100) {
    const chunk = all.slice(i, i + 100);
    // Any key's mod revision is > -1 (0 when absent): a comparison that always holds, since a transaction needs one.
    const res = await etcd.client
      .if(`${lb.prefix}/${chunk[0]![0]}`, 'Mod', '>', -1)
      .then(...chunk.map(([key, value]) => etcd.client.put(`${lb.prefix}/${key}`).value(value)))
      .commit();
    revision = BigInt(res.header.revision);
  }
  return revision;
}

/** Reloads HAProxy's master has done: the counter a runtime update must leave alone. */
export async function masterReloads(lb: TestEdgelb): Promise<number> {
  return (await lb.haproxy.showProc()).reloads;
}

export async function deleteKey(etcd: EtcdServer, lb: TestEdgelb, key: string): Promise<bigint> {
  const res = await etcd.client.delete().key(`${lb.prefix}/${key}`);
  return BigInt(res.header.revision);
}

/** Deletes every key under `prefix` (relative to the LB prefix), e.g. `services/web/`. */
export async function deletePrefix(etcd: EtcdServer, lb: TestEdgelb, prefix: string): Promise<bigint> {
  const res = await etcd.client.delete().prefix(`${lb.prefix}/${prefix}`);
  return BigInt(res.header.revision);
}

/** The etcd revision the controller last applied (or found unchanged), -1 before the first. */
export function appliedRevision(lb: TestEdgelb): bigint {
  const revision = lb.controller.status().revision;
  return revision === undefined ? -1n : BigInt(revision);
}

/**
 * Waits until the controller has applied a snapshot at or after `revision` and has nothing
 * left to do. A failed apply never advances the revision, so a broken config times out here.
 */
export async function settled(lb: TestEdgelb, revision: bigint, timeoutMs = 15_000): Promise<void> {
  await waitFor(() => appliedRevision(lb) >= revision, {
    timeoutMs,
    what: `the controller to apply etcd revision ${revision} (applied: ${lb.controller.status().revision}, last apply: ${JSON.stringify(lb.controller.status().lastApply)})`,
  });
  await lb.controller.whenIdle();
}

/** Waits until HAProxy answers at all (the first config is running). */
export async function lbReady(lb: TestEdgelb): Promise<void> {
  await waitFor(() => lb.controller.status().counters.starts >= 1, { timeoutMs: 15_000, what: 'HAProxy to start' });
  await waitFor(() => get(lb.httpPort, '/', 'ready.invalid').then((r) => r.status > 0), { what: 'HAProxy to answer' });
}

/**
 * Polls until a request answers as expected. Right after a seamless reload the old worker may
 * still take a connection or two, so each assertion retries until its deadline; a wrong route
 * that persists fails with the last reply in the message.
 */
export async function expectReply(
  lb: TestEdgelb,
  path: string,
  host: string,
  check: (reply: Reply) => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<Reply> {
  let last: Reply | undefined;
  try {
    return await waitFor(
      async () => {
        last = await get(lb.httpPort, path, host);
        return check(last) && last;
      },
      { timeoutMs, what },
    );
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; GET ${path} Host: ${host} last answered ${last?.status} ` +
        `backend=${last?.backend} url=${last?.backendUrl} body=${last?.body.slice(0, 200)}`,
    );
  }
}

/** Expects GET path with Host to be answered by `backend`, which received `url` (when given). */
export function expectRoute(lb: TestEdgelb, path: string, host: string, backend: string, url?: string): Promise<Reply> {
  return expectReply(
    lb,
    path,
    host,
    (r) => r.status === 200 && r.backend === backend && (url === undefined || r.backendUrl === url),
    `GET ${path} Host: ${host} to reach backend ${backend}${url === undefined ? '' : ` as ${url}`}`,
  );
}

export const NO_ROUTE_TEXT = 'No service for this address';
export const UNAVAILABLE_TEXT = 'Service unavailable';

function isHtml503(reply: Reply, text: string): boolean {
  return reply.status === 503 && String(reply.headers['content-type']).startsWith('text/html') && reply.body.includes('503') && reply.body.includes(text);
}

/** Expects the load balancer's own "no service for this address" page. */
export function expectNoRoute(lb: TestEdgelb, path: string, host: string): Promise<Reply> {
  return expectReply(lb, path, host, (r) => isHtml503(r, NO_ROUTE_TEXT), `GET ${path} Host: ${host} to get the no-route 503 page`);
}

/** Expects the "service unavailable" page of a routed service that has no upstream to use. */
export function expectUnavailable(lb: TestEdgelb, path: string, host: string): Promise<Reply> {
  return expectReply(lb, path, host, (r) => isHtml503(r, UNAVAILABLE_TEXT), `GET ${path} Host: ${host} to get the service-unavailable 503 page`);
}

/** Log lines with the given msg. */
export function logsWithMsg(lb: TestEdgelb, msg: string): Record<string, unknown>[] {
  return lb.logs.filter((l) => l.msg === msg);
}

// ---- TCP ----

export interface EchoServer {
  readonly port: number;
  readonly address: string;
  /** Connections accepted so far. */
  readonly connections: () => number;
  close(): Promise<void>;
}

/** A real TCP server that writes back every byte it receives. */
export async function startEchoServer(): Promise<EchoServer> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    connections: () => connections,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Connects to 127.0.0.1:port, sends `payload` and resolves with the bytes that came back once
 * as many as were sent arrived. Rejects when the connection is refused, closed early or slow.
 */
export function tcpRoundTrip(port: number, payload: Buffer, timeoutMs = 2000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    const socket = net.createConnection({ host: '127.0.0.1', port });
    const finish = (error: Error | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(() => finish(new Error(`no echo within ${timeoutMs} ms (got ${received} bytes)`)), timeoutMs);
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= payload.length) finish(undefined);
    });
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error(`connection closed after ${received} of ${payload.length} bytes`)));
  });
}

// ---- backends ----

/** Starts one test backend per name; close them all with closeBackends. */
export async function startBackends<const N extends string>(...names: N[]): Promise<Record<N, Backend>> {
  const list = await Promise.all(names.map((name) => startBackend(name)));
  return Object.fromEntries(list.map((b) => [b.name, b])) as Record<N, Backend>;
}

export async function closeBackends(backends: Record<string, Backend> | undefined): Promise<void> {
  if (backends) await Promise.all(Object.values(backends).map((b) => b.close()));
}

/** Sends `count` requests and returns which backend answered each (or `status:<code>`). */
export async function sample(lb: TestEdgelb, path: string, host: string, count: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < count; i++) {
    const reply = await get(lb.httpPort, path, host);
    seen.push(reply.backend ?? `status:${reply.status}`);
  }
  return seen;
}

/** Polls until `count` consecutive requests are answered by exactly the backends in `expected` (all of them). */
export async function expectBackendSet(lb: TestEdgelb, path: string, host: string, expected: string[], count = 8): Promise<void> {
  const want = [...expected].sort().join(',');
  let last: string[] = [];
  try {
    await waitFor(
      async () => {
        last = await sample(lb, path, host, count);
        return [...new Set(last)].sort().join(',') === want;
      },
      { timeoutMs: 5000, what: `requests to ${host}${path} to be spread over exactly [${want}]` },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last sample: ${last.join(',')}`);
  }
}

/** Starts a controller with its own HAProxy and prefix, writes `entries` and waits until they are applied. */
export async function startLbWith(
  etcd: EtcdServer,
  entries: Record<string, string> = {},
  overrides: Record<string, string> = {},
  options: TestEdgelbOptions = {},
): Promise<TestEdgelb> {
  const lb = await startTestEdgelb(etcd, overrides, undefined, options);
  try {
    await lbReady(lb);
    if (Object.keys(entries).length > 0) await settled(lb, await putKeys(etcd, lb, entries));
    return lb;
  } catch (error) {
    await lb.stopAll();
    throw error;
  }
}
