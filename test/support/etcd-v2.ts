import http from 'node:http';
import https from 'node:https';
import type { EtcdAccess } from './etcd-access.js';

/**
 * A minimal etcd v2 HTTP client for the tests: what etcd 2.x clients (Kontena's Ruby agent, the
 * edgelb v2 source) send, over http or https, with an optional client certificate and basic auth.
 * Replies are returned whatever their status, so tests can assert refusals.
 */

export interface V2Target extends EtcdAccess {
  /** `http://127.0.0.1:port` or `https://...`. */
  readonly endpoint: string;
}

export interface V2Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** `X-Etcd-Index`: the store's index when the reply was made. */
  readonly etcdIndex: number | undefined;
}

export interface V2RequestOptions {
  readonly query?: Readonly<Record<string, string>>;
  /** Sent form-encoded, as etcd v2 clients send key values. */
  readonly form?: Readonly<Record<string, string>>;
  /** Sent as JSON (the /v2/auth API). */
  readonly json?: unknown;
  readonly signal?: AbortSignal;
  /** Gives up when the connection is idle this long (a long-poll watch needs more). */
  readonly timeoutMs?: number;
}

/** The URL path of a v2 key (`/a/b` → `/v2/keys/a/b`), each segment escaped. */
export function keyPath(key: string): string {
  return `/v2/keys${key.split('/').map(encodeURIComponent).join('/')}`;
}

export function v2Request(target: V2Target, method: string, path: string, options: V2RequestOptions = {}): Promise<V2Reply> {
  const url = new URL(path, target.endpoint);
  for (const [name, value] of Object.entries(options.query ?? {})) url.searchParams.set(name, value);
  const headers: http.OutgoingHttpHeaders = {};
  let body: string | undefined;
  if (options.form) {
    body = new URLSearchParams(options.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers['content-type'] = 'application/json';
  }
  if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
  if (target.auth) {
    headers.authorization = `Basic ${Buffer.from(`${target.auth.username}:${target.auth.password}`).toString('base64')}`;
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  const tls = target.tls;
  return new Promise((resolve, reject) => {
    const requestOptions: https.RequestOptions = {
      method,
      headers,
      signal: options.signal,
      timeout: timeoutMs,
      agent: false, // one connection per request: no pooled socket outlives a test
      ...(tls && { ca: tls.ca, cert: tls.cert, key: tls.key }),
    };
    const send = url.protocol === 'https:' ? https.request : http.request;
    const req = send(url, requestOptions, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const index = Number(res.headers['x-etcd-index']);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          etcdIndex: Number.isFinite(index) && res.headers['x-etcd-index'] !== undefined ? index : undefined,
        });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url.pathname} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** An etcd v2 error body: `{"errorCode":100,"message":"Key not found",...}`. */
export interface V2ErrorBody {
  readonly errorCode: number;
  readonly message: string;
  readonly cause?: string;
}

export interface V2Node {
  readonly key?: string;
  readonly value?: string;
  readonly dir?: boolean;
  readonly nodes?: readonly V2Node[];
  readonly modifiedIndex: number;
  readonly createdIndex: number;
}

export interface V2KeyReply {
  readonly action: string;
  readonly node: V2Node;
  readonly prevNode?: V2Node;
}

/** The JSON body of a v2 reply, or undefined when it is not JSON (say, a 404 page). */
export function v2Json<T = V2KeyReply>(reply: V2Reply): T | undefined {
  try {
    return JSON.parse(reply.body) as T;
  } catch {
    return undefined;
  }
}
