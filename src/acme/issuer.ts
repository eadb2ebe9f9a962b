import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import acme from 'acme-client';
import type { AttemptFailure } from './schedule.js';

export const LETS_ENCRYPT_PRODUCTION = 'https://acme-v02.api.letsencrypt.org/directory';

/**
 * An acme-client Client set up for edgelb, one per attempt:
 *
 * - its own HTTP(S) agents, so a private CA (pebble, a corporate ACME server) is trusted for this
 *   client only: acme-client's axios instance (`acme.axios`) is shared by every client in the
 *   process, so nothing is set on it;
 * - acme-client's own retries are off (it would retry a refused connection 5 times over 75 s, and
 *   sleep through a Retry-After of hours while holding the leader's work): edgelb's per-domain
 *   backoff is the only retry, and it honours Retry-After;
 * - every failure is explained in the CA's words: the last problem document (type, detail,
 *   status, Retry-After) is kept, and network errors, which acme-client turns into a TypeError
 *   when its retries are off, are recovered from the agents.
 *
 * This reaches into `client.http.request` (acme-client 5.x's HttpClient), the one place every
 * request goes through; the integration tests against pebble cover it.
 */
export interface AcmeConnection {
  readonly client: acme.Client;
  /** The failure an error from `client` stands for, with the CA's problem detail when it sent one. */
  explain(error: unknown): AttemptFailure;
  /** Closes the agents' idle connections. */
  close(): void;
}

export interface AcmeConnectionOptions {
  readonly directoryUrl: string;
  readonly accountKey: string | Buffer;
  readonly accountUrl?: string;
  /** PEM of extra CA certificates to trust for the directory (in addition to the system's). */
  readonly directoryCa?: string;
  /** Per request. */
  readonly timeoutMs?: number;
  /** Status polling (challenge, order): first delay, longest delay, attempts. */
  readonly poll?: { readonly minMs: number; readonly maxMs: number; readonly attempts: number };
}

interface HttpClientLike {
  request(url: string, method: string, opts?: Record<string, unknown>): Promise<{ status: number; headers: Record<string, string | undefined>; data: unknown }>;
}

interface Problem {
  readonly type?: string;
  readonly detail?: string;
  readonly error?: { readonly type?: string; readonly detail?: string };
  readonly status?: string | number;
}

export function connectAcme(options: AcmeConnectionOptions): AcmeConnection {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const poll = options.poll ?? { minMs: 1000, maxMs: 10_000, attempts: 12 };
  let networkError: Error | undefined;
  let lastFailure: AttemptFailure | undefined;
  let lastUrl = options.directoryUrl;

  const onSocketError = (error: Error) => {
    networkError = error;
  };
  const httpAgent = trackErrors(new http.Agent({ keepAlive: true }), onSocketError);
  const httpsAgent = trackErrors(
    new https.Agent({
      keepAlive: true,
      ...(options.directoryCa ? { ca: [...tls.rootCertificates, options.directoryCa] } : {}),
    }),
    onSocketError,
  );

  const client = new acme.Client({
    directoryUrl: options.directoryUrl,
    accountKey: options.accountKey,
    ...(options.accountUrl ? { accountUrl: options.accountUrl } : {}),
    backoffMin: poll.minMs,
    backoffMax: poll.maxMs,
    backoffAttempts: poll.attempts,
  });
  const httpClient = (client as unknown as { http?: HttpClientLike }).http;
  if (!httpClient || typeof httpClient.request !== 'function') {
    throw new Error('acme-client internals changed (no client.http.request); edgelb needs acme-client 5.x');
  }
  const request = httpClient.request.bind(httpClient);
  httpClient.request = async (url, method, opts = {}) => {
    lastUrl = url;
    networkError = undefined;
    lastFailure = undefined;
    const response = await request(url, method, {
      ...opts,
      httpAgent,
      httpsAgent,
      timeout: timeoutMs,
      // acme-client's axios interceptor retries while retryAttempt <= 5: start past it.
      retryAttempt: Number.MAX_SAFE_INTEGER,
    });
    lastFailure = failureOf(response, Date.now());
    return response;
  };

  return {
    client,
    explain(error: unknown): AttemptFailure {
      const message = error instanceof Error ? error.message : String(error);
      if (networkError) {
        const code = (networkError as NodeJS.ErrnoException).code;
        const detail = code && !networkError.message.includes(code) ? `${networkError.message} (${code})` : networkError.message;
        return { message: `cannot reach the ACME server at ${hostOf(lastUrl)}: ${detail}` };
      }
      if (lastFailure) return lastFailure;
      if (error instanceof TypeError && /reading 'config'|reading 'status'/.test(message)) {
        return { message: `no answer from the ACME server at ${hostOf(lastUrl)} (timed out after ${timeoutMs / 1000} s or the connection dropped)` };
      }
      return { message: message || 'unknown error' };
    },
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/** An HTTP error answer or a resource gone `invalid`, as a failure; undefined for a success. */
function failureOf(response: { status: number; headers: Record<string, string | undefined>; data: unknown }, now: number): AttemptFailure | undefined {
  const data = (typeof response.data === 'object' && response.data !== null ? response.data : {}) as Problem;
  const retryAfterMs = parseRetryAfter(response.headers['retry-after'], now);
  if (response.status >= 400) {
    const detail = data.detail ?? (typeof response.data === 'string' && response.data.trim() ? response.data.trim().slice(0, 300) : undefined);
    return {
      message: oneLine(detail ?? `HTTP ${response.status}`),
      ...(data.type ? { type: data.type } : {}),
      status: response.status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
  }
  if (data.status === 'invalid' && data.error) {
    return { message: oneLine(data.error.detail ?? 'the CA marked it invalid'), ...(data.error.type ? { type: data.error.type } : {}) };
  }
  return undefined;
}

/** Seconds (`120`) or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | undefined, now: number): number | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

function trackErrors<A extends http.Agent>(agent: A, onError: (error: Error) => void): A {
  const create = agent.createConnection.bind(agent) as http.Agent['createConnection'];
  (agent as http.Agent).createConnection = (opts, callback) => {
    const socket = create(opts, callback);
    socket?.once('error', onError);
    return socket;
  };
  return agent;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
