/**
 * HTTP backends for the benchmarks, in their own thread (started by backends.ts) so serving them
 * does not compete with the benchmark's main event loop. Each answers every request with 200, a
 * short text body and `x-served-by: <name>`, and counts what it served.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import type { BackendsMessage } from './backends.js';

const names = workerData as readonly string[];
const counts = new Map<string, number>(names.map((n) => [n, 0]));
const servers: http.Server[] = [];

async function listen(name: string): Promise<number> {
  const body = Buffer.from(`Hello from ${name}\n`);
  const server = http.createServer((req, res) => {
    counts.set(name, (counts.get(name) ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'x-served-by': name });
    res.end(body);
    req.resume();
  });
  // Longer than HAProxy keeps an idle server connection, so no request races the backend's own idle close.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  server.requestTimeout = 0;
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return (server.address() as AddressInfo).port;
}

const ports = await Promise.all(names.map(listen));
parentPort!.on('message', (message: BackendsMessage) => {
  if (message.type === 'counts') {
    parentPort!.postMessage({ type: 'counts', counts: Object.fromEntries(counts) });
  } else if (message.type === 'close') {
    for (const s of servers) s.closeAllConnections();
    void Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))).then(() => parentPort!.postMessage({ type: 'closed' }));
  }
});
parentPort!.postMessage({ type: 'ready', ports });
