import http from 'node:http';
import https from 'node:https';
import type { EtcdConnection } from './connection.js';
import { describeTls, EtcdFailure, firstLine, looksLikeTls } from './errors.js';

/** etcd v2's error body: `{"errorCode":100,"message":"Key not found","cause":"/a","index":7}`. */
export interface V2Error {
  readonly errorCode: number;
  readonly message: string;
  readonly cause?: string;
  readonly index?: number;
}

export interface V2Node {
  readonly key: string;
  readonly value?: string;
  readonly dir?: boolean;
  readonly nodes?: readonly V2Node[];
  readonly modifiedIndex: number;
}

export interface V2Response {
  readonly status: number;
  /** X-Etcd-Index: the store's index when the request was answered (a watch: when it started). */
  readonly index: string | undefined;
  readonly body: { readonly action?: string; readonly node?: V2Node } & Partial<V2Error>;
  /** True when the request carried no user (no ETCD_USERNAME): a refusal then means something else. */
  readonly anonymous?: boolean;
}

export interface V2RequestOptions {
  readonly query?: Readonly<Record<string, string>>;
  readonly form?: Readonly<Record<string, string>>;
  /** Cancels the request (a watch being cancelled or restarted). */
  readonly signal?: AbortSignal;
  /** Longest wait for the whole answer (default 5 s; 0: none, for watches). */
  readonly timeoutMs?: number;
  /** Called once the headers arrive (a watch is established then). */
  readonly onHeaders?: (index: string | undefined) => void;
}

/** etcd v2 error codes edgelb acts on (etcd's error/error.go). */
export const V2_CODES = {
  keyNotFound: 100,
  compareFailed: 101,
  nodeExists: 105,
  unauthorized: 110,
  eventIndexCleared: 401,
} as const;

const DEFAULT_TIMEOUT_MS = 5000;

/**
 * The etcd v2 HTTP API (`/v2/keys`) over keep-alive connections, with the same TLS client
 * certificate and credentials as the v3 client. Sticks to the member that answers and moves to
 * the next one as soon as a connection fails, so losing a member costs one round trip.
 */
export class V2Http {
  readonly endpoints: readonly string[];
  private current = 0;
  private readonly agents: { readonly http: http.Agent; readonly https: https.Agent };
  private readonly authorization: string | undefined;

  constructor(connection: EtcdConnection) {
    this.endpoints = connection.endpoints;
    this.agents = {
      http: new http.Agent({ keepAlive: true, keepAliveMsecs: 5000 }),
      https: new https.Agent({
        keepAlive: true,
        keepAliveMsecs: 5000,
        ...(connection.tls?.ca !== undefined ? { ca: connection.tls.ca } : {}),
        ...(connection.tls?.cert !== undefined ? { cert: connection.tls.cert } : {}),
        ...(connection.tls?.key !== undefined ? { key: connection.tls.key } : {}),
      }),
    };
    this.authorization = connection.auth ? `Basic ${Buffer.from(`${connection.auth.username}:${connection.auth.password}`).toString('base64')}` : undefined;
  }

  /** `GET /version` of the member in use: `{"etcdserver":"2.3.7",...}`. */
  async version(timeoutMs?: number): Promise<string> {
    const answer = await this.send('GET', '/version', timeoutMs === undefined ? {} : { timeoutMs });
    const server = (answer.body as { etcdserver?: unknown }).etcdserver;
    if (typeof server !== 'string') throw new EtcdFailure('other', `GET /version did not answer an etcd version (HTTP ${answer.status})`);
    return server;
  }

  /** A request to `/v2/keys<key>`, trying each member once, starting with the one last used. */
  keys(method: 'GET' | 'PUT' | 'DELETE', key: string, options: V2RequestOptions = {}): Promise<V2Response> {
    return this.send(method, `/v2/keys${encodeKey(key)}`, options);
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private async send(method: string, path: string, options: V2RequestOptions): Promise<V2Response> {
    // Reported as the answer when every member refused the handshake (the same certificates
    // everywhere); one member with a bad certificate is skipped like a dead one.
    let tlsFailure: EtcdFailure | undefined;
    let otherFailure: EtcdFailure | undefined;
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      const index = (this.current + attempt) % this.endpoints.length;
      try {
        const response = await this.once(this.endpoints[index]!, method, path, options);
        // A member without a leader answers 5xx: another member may have one.
        if (response.status >= 500) {
          otherFailure = new EtcdFailure(
            'unreachable',
            `${this.endpoints[index]} answered HTTP ${response.status}: ${response.body.message ?? ''} ${response.body.cause ?? ''}`.trim(),
          );
          continue;
        }
        this.current = index;
        return response;
      } catch (error) {
        if (options.signal?.aborted) throw error;
        const failure = classifyTransport(error as NodeJS.ErrnoException, this.endpoints[index]!);
        if (failure.code === 'tls') tlsFailure ??= failure;
        else otherFailure = failure;
      }
    }
    this.current = (this.current + 1) % this.endpoints.length;
    throw otherFailure ?? tlsFailure ?? new EtcdFailure('unreachable', 'no etcd endpoint');
  }

  private once(endpoint: string, method: string, path: string, options: V2RequestOptions): Promise<V2Response> {
    const url = new URL(path, endpoint);
    for (const [name, value] of Object.entries(options.query ?? {})) url.searchParams.set(name, value);
    const body = options.form ? new URLSearchParams(options.form as Record<string, string>).toString() : undefined;
    const secure = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      const request = (secure ? https : http).request(
        url,
        {
          method,
          agent: secure ? this.agents.https : this.agents.http,
          signal: options.signal,
          headers: {
            ...(this.authorization ? { authorization: this.authorization } : {}),
            ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {}),
          },
        },
        (response) => {
          const index = headerValue(response.headers['x-etcd-index']);
          options.onHeaders?.(index);
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', (error) => {
            clearTimeout(timer);
            reject(error);
          });
          response.on('end', () => {
            clearTimeout(timer);
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: V2Response['body'];
            try {
              parsed = text.trim() === '' ? {} : (JSON.parse(text) as V2Response['body']);
            } catch {
              // etcd 3.x with the v2 API off answers Go's plain "404 page not found".
              parsed = { message: firstLine(text) };
            }
            resolve({ status: response.statusCode ?? 0, index, body: parsed, anonymous: this.authorization === undefined });
          });
        },
      );
      const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const timer =
        timeoutMs > 0
          ? setTimeout(() => request.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs)
          : undefined;
      request.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      request.end(body);
    });
  }
}

/** `/a/b c` → `/a/b%20c`: each path segment encoded, the slashes kept. */
function encodeKey(key: string): string {
  return key
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The etcd index an answer carries: its X-Etcd-Index header, else the error's or the node's index. */
export function indexOf(response: V2Response): string {
  return response.index ?? String(response.body.index ?? response.body.node?.modifiedIndex ?? 0);
}

/** etcd answered the write itself (2xx, no error body): not a proxy's or a v2-less server's page. */
export function succeeded(response: V2Response): boolean {
  return response.status >= 200 && response.status < 300 && response.body.errorCode === undefined;
}

const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/** A connection-level error (refused, reset, TLS) as an EtcdFailure naming the member. */
function classifyTransport(error: NodeJS.ErrnoException, endpoint: string): EtcdFailure {
  // A member that dies or refuses mid-handshake ("socket disconnected before secure TLS
  // connection was established") is gone, not a certificate problem.
  if (error.code !== undefined && CONNECTION_ERRORS.has(error.code)) {
    return new EtcdFailure('unreachable', `${endpoint}: ${firstLine(error.message)}`, { cause: error });
  }
  const text = `${error.code ?? ''} ${firstLine(error.message)}`;
  if (looksLikeTls(text)) return new EtcdFailure('tls', `${endpoint}: ${describeTls(error.message, error.code)}`, { cause: error });
  return new EtcdFailure('unreachable', `${endpoint}: ${firstLine(error.message)}`, { cause: error });
}

/** The failure an etcd v2 error body means; undefined for codes the caller handles itself. */
export function failureOf(response: V2Response, what: string): EtcdFailure {
  const { errorCode, message, cause } = response.body;
  if (errorCode === V2_CODES.unauthorized || response.status === 401) {
    // etcd's v2 API answers a wrong password and a key outside the user's roles alike (401,
    // errorCode 110); without credentials, with --client-cert-auth it takes the user named by the
    // client certificate's common name, else the guest role.
    const why = response.anonymous
      ? "no ETCD_USERNAME is set, and etcd lets no anonymous request read this key: set ETCD_USERNAME, or with client certificates give etcd a user named like the certificate's common name whose role covers the key"
      : "wrong user name or password, or the user's role does not cover this key";
    return new EtcdFailure('auth', `${what}: ${message ?? 'unauthorized'} (${why})`);
  }
  if (errorCode === V2_CODES.eventIndexCleared) return new EtcdFailure('history-lost', `${what}: ${message ?? ''} ${cause ?? ''}`.trim());
  if (response.status === 404 && errorCode === undefined) {
    return new EtcdFailure('api-unavailable', `${what}: the server has no v2 API (etcd 3.4 and later need --enable-v2)`);
  }
  return new EtcdFailure('other', `${what}: HTTP ${response.status} ${message ?? ''}${cause ? ` (${cause})` : ''}`.trim());
}
