import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A test backend whose health the test decides: `/health` answers 200 or 500 as told, `/slow?ms=N`
 * answers after N ms, anything else answers at once with JSON naming the backend.
 */
export interface CheckedBackend {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  healthy: boolean;
  /** Health checks received so far. */
  healthChecks(): number;
  /** Requests other than health checks received so far. */
  requests(): number;
  close(): Promise<void>;
}

export async function startCheckedBackend(name: string, healthy = true): Promise<CheckedBackend> {
  let checks = 0;
  let requests = 0;
  const state = { healthy };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://backend');
    if (url.pathname === '/health') {
      checks++;
      res.writeHead(state.healthy ? 200 : 500, { 'content-type': 'text/plain' });
      res.end(state.healthy ? 'ok' : 'failing');
      return;
    }
    requests++;
    const body = JSON.stringify({ backend: name, url: req.url, host: req.headers.host ?? null });
    const answer = () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (url.pathname === '/slow') setTimeout(answer, Number(url.searchParams.get('ms') ?? 1000));
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    address: `127.0.0.1:${port}`,
    get healthy() {
      return state.healthy;
    },
    set healthy(value: boolean) {
      state.healthy = value;
    },
    healthChecks: () => checks,
    requests: () => requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
