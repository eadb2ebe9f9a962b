import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A test application more configurable than support/backend.ts: any loopback address (so two
 * instances can share a port number, as health_check_port needs), a health path with a status
 * that can change, and an application cookie of its own (for `cookie ... prefix`).
 */
export interface App {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly address: string;
  /** Every request received (method, url, headers), newest last. */
  readonly requests: { url: string; headers: http.IncomingHttpHeaders }[];
  /** Status answered on `healthPath`. */
  healthStatus: number;
  close(): Promise<void>;
}

export interface AppOptions {
  readonly name: string;
  /** Loopback address to listen on; 127.0.0.1 by default. */
  readonly host?: string;
  readonly port?: number;
  readonly healthPath?: string;
  /** Sent as `Set-Cookie: <name>=<value>` on every response. */
  readonly setCookie?: { name: string; value: string };
}

export async function startApp(options: AppOptions): Promise<App> {
  const requests: App['requests'] = [];
  const app = { healthStatus: 200 } as { healthStatus: number };
  const server = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    if (options.healthPath !== undefined && req.url === options.healthPath) {
      res.writeHead(app.healthStatus, { 'content-type': 'text/plain' });
      res.end(`health ${app.healthStatus}`);
      return;
    }
    const body = JSON.stringify({ backend: options.name, url: req.url, cookie: req.headers.cookie ?? null });
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    if (options.setCookie) headers['set-cookie'] = `${options.setCookie.name}=${options.setCookie.value}; Path=/`;
    res.writeHead(200, headers);
    res.end(body);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return Object.assign(app, {
    name: options.name,
    host,
    port,
    address: `${host}:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
