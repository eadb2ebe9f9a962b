import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Backend {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  /** Requests seen, newest last: what the backend actually received. */
  readonly requests: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** A real HTTP server that answers with JSON naming itself and the request it received; on `host` (default 127.0.0.1). */
export async function startBackend(name: string, host = '127.0.0.1'): Promise<Backend> {
  const requests: Backend['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const body = JSON.stringify({ backend: name, url: req.url, host: req.headers.host ?? null });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    address: `${host}:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
