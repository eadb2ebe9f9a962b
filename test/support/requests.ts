import http from 'node:http';
import net from 'node:net';
import type { Reply } from './http.js';

/**
 * Requests beyond support/http.ts's plain GET: any header (Authorization, Cookie), and raw bytes
 * on a socket for what an HTTP client library will not send (a PROXY protocol header, a
 * malformed or unfinished request).
 */

export interface RequestOptions {
  readonly path?: string;
  readonly host?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

const agent = new http.Agent({ keepAlive: false });

/** One GET to 127.0.0.1:port with extra headers; never keeps the connection. */
export function request(port: number, options: RequestOptions = {}): Promise<Reply> {
  const { path = '/', host = 'localhost', headers = {}, timeoutMs = 5000 } = options;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', headers: { host, ...headers }, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ...backendOf(res.headers, body) });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`request timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The JSON test backends (support/backend.ts) name themselves and the URL they received. */
function backendOf(headers: http.IncomingHttpHeaders, body: string): { backend: string | undefined; backendUrl: string | undefined } {
  if (!String(headers['content-type']).startsWith('application/json')) return { backend: undefined, backendUrl: undefined };
  try {
    const parsed = JSON.parse(body) as { backend?: string; url?: string };
    return { backend: parsed.backend, backendUrl: parsed.url };
  } catch {
    return { backend: undefined, backendUrl: undefined };
  }
}

export function basicAuth(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

export interface RawReply {
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** Everything received, as text. */
  readonly text: string;
}

/**
 * Writes `bytes` to 127.0.0.1:port and collects what comes back until the server closes the
 * connection (or `timeoutMs`). `status` is 0 when nothing that looks like HTTP came back.
 */
export function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 5000): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.createConnection({ host: '127.0.0.1', port });
    const timer = setTimeout(() => socket.destroy(new Error(`no close within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      // A reset after the reply still counts as the reply.
      if (error.code === 'ECONNRESET' && chunks.length > 0) finish();
      else if (error.code === 'ECONNRESET') resolve({ status: 0, head: '', body: '', text: '' });
      else reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      finish();
    });
    let done = false;
    function finish() {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split);
      resolve({ status: Number(/^HTTP\/1\.[01] ([0-9]{3})/.exec(head)?.[1] ?? 0), head, body: split < 0 ? '' : text.slice(split + 4), text });
    }
  });
}

/** A PROXY protocol v1 header, as an L4 load balancer puts it in front of the client's bytes. */
export function proxyV1Header(clientIp: string, clientPort: number, lbPort: number): string {
  return `PROXY TCP4 ${clientIp} 127.0.0.1 ${clientPort} ${lbPort}\r\n`;
}
