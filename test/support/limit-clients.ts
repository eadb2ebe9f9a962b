import http from 'node:http';
import net from 'node:net';
import type { Reply } from './http.js';

// Clients for rate and connection limits (issue 15): requests from a chosen loopback address (the
// limits count per client address; 127.0.0.0/8 is all local) and the runtime API's answers.

/** One GET to `port` from `from` (a loopback address) with the Host header; never keeps the connection. */
export function getFrom(port: number, from: string, host: string, urlPath = '/'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, localAddress: from, headers: { host }, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const backend = String(res.headers['content-type']).startsWith('application/json') ? (JSON.parse(body) as { backend: string }).backend : undefined;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, backend, backendUrl: undefined });
      });
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** One command to HAProxy's runtime API on `socketPath`, its whole answer. */
export function runtimeCommand(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = net.createConnection(socketPath, () => socket.end(`${command}\n`));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}
