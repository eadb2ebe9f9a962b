import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Stands in for etcd 2.3 (not packaged anywhere any more): an HTTP/1-only server that forwards
 * the v2 API (`/v2/*`) and `/health` to a real etcd 3.4 started with `--enable-v2`, says it is
 * 2.3.7 on `/version`, and answers everything else 404 as etcd 2.3's mux does. It speaks no
 * HTTP/2, so a gRPC (v3) client fails against it exactly as against etcd 2.3.
 *
 * Responses are streamed, so long-poll watches (`?wait=true`) stay open as long as upstream
 * keeps them open; a client that goes away aborts its upstream request. When the upstream etcd
 * is down, the client's connection is dropped (a real etcd 2.3 that is down refuses it).
 */

export const ETCD_23_VERSION = { etcdserver: '2.3.7', etcdcluster: '2.3.0' } as const;

export interface V2OnlyFront {
  /** `http://127.0.0.1:port`. */
  readonly endpoint: string;
  /** `METHOD /path?query` of every request received, in order (no headers: they may carry credentials). */
  readonly requests: readonly string[];
  /** Cuts every open connection (in-flight watches included), as a network blip would; new ones are accepted. */
  dropConnections(): void;
  stop(): Promise<void>;
}

// Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection and are not forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)));
}

/**
 * `port`: listen there (a front started again where the last one was, as a restarted etcd would be);
 * `host`: the address to listen on (default 127.0.0.1), e.g. a container's gateway.
 */
export async function startV2OnlyFront(upstreamEndpoint: string, options: { readonly port?: number; readonly host?: string } = {}): Promise<V2OnlyFront> {
  const upstream = new URL(upstreamEndpoint);
  if (upstream.protocol !== 'http:') throw new Error(`startV2OnlyFront: upstream must be plain http, not ${upstreamEndpoint}`);
  const requests: string[] = [];

  const server = http.createServer((req, res) => {
    const target = req.url ?? '/';
    requests.push(`${req.method} ${target}`);
    const pathname = new URL(target, 'http://front').pathname;
    if (pathname === '/version') return answerVersion(req, res);
    if (pathname.startsWith('/v2/') || pathname === '/health') return forward(upstream, req, res);
    // etcd 2.3 serves its API on Go's http.ServeMux, whose unknown paths get this reply.
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
    res.end('404 page not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });

  return {
    endpoint: `http://${options.host ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}`,
    requests,
    dropConnections: () => server.closeAllConnections(),
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function answerVersion(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain; charset=utf-8' });
    res.end('Method Not Allowed');
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(ETCD_23_VERSION));
}

function forward(upstream: URL, req: http.IncomingMessage, res: http.ServerResponse): void {
  const headers = { ...endToEnd(req.headers), host: upstream.host };
  const proxied = http.request({
    host: upstream.hostname,
    port: upstream.port,
    method: req.method,
    path: req.url,
    headers,
    agent: false, // one upstream connection per request: dropping the client drops exactly its request
  });
  proxied.on('response', (upstreamRes) => {
    res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, endToEnd(upstreamRes.headers));
    // A watch's headers come long before its event: pass them on now.
    res.flushHeaders();
    upstreamRes.pipe(res);
    // Upstream died mid-reply: the client must see a broken reply, not a short one that looks complete.
    upstreamRes.on('aborted', () => res.destroy());
    upstreamRes.on('error', () => res.destroy());
  });
  // Upstream unreachable: drop the client's connection, as a dead etcd would.
  proxied.on('error', () => res.destroy());
  // The client went away (or dropConnections): stop the upstream request, a watch included.
  res.on('close', () => {
    if (!res.writableFinished) proxied.destroy();
  });
  req.pipe(proxied);
}
