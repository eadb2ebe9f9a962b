import type { RawCert } from '../../src/tls/bundle.js';
import { X509Certificate } from 'node:crypto';
import http2 from 'node:http2';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { LeafCert } from './certs.js';
import { waitFor } from './wait.js';

/**
 * TLS clients for the integration tests and the TLS benchmark: what a real client sees on the
 * HTTPS port (certificate, chain, ALPN, protocol, cipher), HTTPS and HTTP/2 requests, and a
 * load generator that counts every failed request. Always on 127.0.0.1; the SNI name is given
 * separately (no servername: Node sends no SNI when connecting to an IP address).
 */

export interface CertSummary {
  readonly subjectCN: string | undefined;
  readonly issuerCN: string | undefined;
  /** subjectAltName DNS names. */
  readonly names: readonly string[];
  readonly serialNumber: string;
  readonly fingerprint256: string;
  readonly validTo: string;
}

export interface Handshake {
  /** The leaf the server presented. */
  readonly cert: CertSummary;
  /** Leaf first, then each issuer as the client sees it (sent by the server, or found in `ca`), root last. */
  readonly chain: readonly CertSummary[];
  readonly alpn: string | false | null;
  readonly protocol: string | null;
  readonly cipher: string;
  readonly authorized: boolean;
  readonly authorizationError: string | undefined;
  readonly sessionReused: boolean;
}

export interface HandshakeOptions {
  /** SNI; none is sent when absent. */
  readonly servername?: string;
  readonly ca?: string | readonly string[];
  /** Default false: most tests look at what is served, not whether it verifies. */
  readonly rejectUnauthorized?: boolean;
  readonly ALPNProtocols?: readonly string[];
  readonly ciphers?: string;
  readonly minVersion?: tls.SecureVersion;
  readonly maxVersion?: tls.SecureVersion;
  readonly timeoutMs?: number;
}

type PeerCert = tls.PeerCertificate & { issuerCertificate?: PeerCert };

function summarize(cert: tls.PeerCertificate): CertSummary {
  const cn = (part: unknown) => {
    const value = (part as Record<string, string | string[] | undefined> | undefined)?.CN;
    return Array.isArray(value) ? value[0] : value;
  };
  return {
    subjectCN: cn(cert.subject),
    issuerCN: cn(cert.issuer),
    names: (cert.subjectaltname ?? '')
      .split(/,\s*/)
      .filter((e) => e.startsWith('DNS:'))
      .map((e) => e.slice(4)),
    serialNumber: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
    validTo: cert.valid_to,
  };
}

function chainOf(leaf: PeerCert): CertSummary[] {
  const chain: CertSummary[] = [];
  const seen = new Set<string>();
  for (let cert: PeerCert | undefined = leaf; cert?.fingerprint256 && !seen.has(cert.fingerprint256); cert = cert.issuerCertificate) {
    seen.add(cert.fingerprint256);
    chain.push(summarize(cert));
  }
  return chain;
}

function connectOptions(port: number, options: HandshakeOptions): tls.ConnectionOptions {
  return {
    host: '127.0.0.1',
    port,
    ...(options.servername === undefined ? {} : { servername: options.servername }),
    ...(options.ca === undefined ? {} : { ca: typeof options.ca === 'string' ? options.ca : [...options.ca] }),
    rejectUnauthorized: options.rejectUnauthorized ?? false,
    ...(options.ALPNProtocols === undefined ? {} : { ALPNProtocols: [...options.ALPNProtocols] }),
    ...(options.ciphers === undefined ? {} : { ciphers: options.ciphers }),
    ...(options.minVersion === undefined ? {} : { minVersion: options.minVersion }),
    ...(options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion }),
  };
}

/** One full TLS handshake (never resumed) with the HTTPS port; rejects with the TLS or socket error. */
export function handshake(port: number, options: HandshakeOptions = {}): Promise<Handshake> {
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    let done = false;
    const socket = tls.connect(connectOptions(port, options), () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const peer = socket.getPeerCertificate(true) as PeerCert;
      const result: Handshake = {
        cert: summarize(peer),
        chain: chainOf(peer),
        alpn: socket.alpnProtocol,
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().name,
        authorized: socket.authorized,
        authorizationError: socket.authorizationError === undefined ? undefined : String(socket.authorizationError),
        sessionReused: socket.isSessionReused(),
      };
      socket.destroy();
      resolve(result);
    });
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      socket.destroy();
      reject(new Error(`TLS handshake timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('error', (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
  });
}

/** The SHA-256 fingerprint of a PEM certificate (the first in the text), as a TLS client reports it. */
export function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

export function serialOf(pem: string): string {
  return new X509Certificate(pem).serialNumber;
}

function describeCert(cert: CertSummary | undefined): string {
  return cert ? `${cert.subjectCN} [${cert.names.join(', ')}] serial ${cert.serialNumber} until ${cert.validTo}` : 'nothing';
}

/**
 * Polls until a handshake with SNI `servername` (none when undefined) is answered with `leaf`'s
 * certificate; returns that handshake. The error names what was served last.
 */
export async function expectServedCert(
  port: number,
  servername: string | undefined,
  leaf: LeafCert | { certPem: string },
  options: HandshakeOptions & { what?: string; waitMs?: number } = {},
): Promise<Handshake> {
  const want = fingerprintOf(leaf.certPem);
  let last: Handshake | undefined;
  let lastError: unknown;
  try {
    return await waitFor(
      async () => {
        try {
          last = await handshake(port, { ...options, servername });
          lastError = undefined;
        } catch (error) {
          lastError = error;
          return false;
        }
        return last.cert.fingerprint256 === want && last;
      },
      {
        timeoutMs: options.waitMs ?? 10_000,
        intervalMs: 25,
        what: options.what ?? `SNI ${servername ?? '(none)'} to be served ${describeCert(certSummaryOf(leaf.certPem))}`,
      },
    );
  } catch (error) {
    const seen = lastError ? `the last handshake failed: ${(lastError as Error).message.trim()}` : `last served ${describeCert(last?.cert)}`;
    throw new Error(`${(error as Error).message}; ${seen}`);
  }
}

export function certSummaryOf(pem: string): CertSummary {
  const cert = new X509Certificate(pem);
  const cn = (text: string) => /(?:^|\n)CN=([^\n]*)/.exec(text)?.[1];
  return {
    subjectCN: cn(cert.subject),
    issuerCN: cn(cert.issuer),
    names: (cert.subjectAltName ?? '')
      .split(/,\s*/)
      .filter((e) => e.startsWith('DNS:'))
      .map((e) => e.slice(4)),
    serialNumber: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
    validTo: cert.validTo,
  };
}

// ---- ports ----

/** 'open' when a TCP connection to 127.0.0.1:port is accepted, 'refused' on ECONNREFUSED. */
export function probePort(port: number, timeoutMs = 2000): Promise<'open' | 'refused'> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to port ${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('open');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      if (error.code === 'ECONNREFUSED') resolve('refused');
      else reject(error);
    });
  });
}

export async function expectPortState(port: number, state: 'open' | 'refused', timeoutMs = 10_000): Promise<void> {
  let last: string | undefined;
  try {
    await waitFor(async () => (last = await probePort(port)) === state, { timeoutMs, what: `port ${port} to be ${state}` });
  } catch (error) {
    throw new Error(`${(error as Error).message} (last: ${last})`);
  }
}

// ---- HTTPS and HTTP/2 requests ----

export interface HttpsReply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The name of the test backend that answered (its JSON body), else undefined. */
  readonly backend: string | undefined;
  readonly backendUrl: string | undefined;
  /** The certificate of the connection the answer came on. */
  readonly fingerprint256: string | undefined;
  readonly alpn: string | false | null;
  /** The TLS session the server gave (a ticket or a session id), for `session` of a later request. */
  readonly session?: Buffer;
  /** Whether the handshake resumed the `session` asked for. */
  readonly resumed?: boolean;
}

export interface HttpsRequestOptions {
  readonly path?: string;
  /** Host header; the SNI name by default. */
  readonly host?: string;
  readonly servername?: string;
  readonly headers?: Record<string, string>;
  /** false (default): a new connection and a full handshake. */
  readonly agent?: https.Agent | false;
  readonly ca?: string;
  /** A client certificate and its key (PEM), for client_ca (mTLS). */
  readonly cert?: string;
  readonly key?: string;
  readonly rejectUnauthorized?: boolean;
  readonly timeoutMs?: number;
  /** Pin the protocol version and ciphers (see oldTlsClient). */
  readonly minVersion?: tls.SecureVersion;
  readonly maxVersion?: tls.SecureVersion;
  readonly ciphers?: string;
  /** A session to resume (HttpsReply.session), whatever the server name. */
  readonly session?: Buffer;
}

/**
 * A client that speaks exactly one old TLS version. Node's OpenSSL 3 refuses TLS 1.0 and 1.1 at its
 * default security level, like the server's, so the client lowers it too (as an old client would not need to).
 */
export function oldTlsClient(version: 'TLSv1' | 'TLSv1.1') {
  return { minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' } as const;
}

function backendOf(headers: IncomingHttpHeaders, body: string): { backend?: string; url?: string } {
  if (!String(headers['content-type']).startsWith('application/json')) return {};
  try {
    return JSON.parse(body) as { backend?: string; url?: string };
  } catch {
    return {};
  }
}

/** One HTTPS GET (HTTP/1.1) to 127.0.0.1:port. */
export function httpsGet(port: number, options: HttpsRequestOptions = {}): Promise<HttpsReply> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const host = options.host ?? options.servername ?? 'localhost';
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/',
        method: 'GET',
        servername: options.servername,
        headers: { ...options.headers, host },
        agent: options.agent ?? false,
        ca: options.ca,
        ...(options.cert === undefined ? {} : { cert: options.cert, key: options.key }),
        rejectUnauthorized: options.rejectUnauthorized ?? false,
        timeout: timeoutMs,
        ...(options.minVersion === undefined ? {} : { minVersion: options.minVersion }),
        ...(options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion }),
        ...(options.ciphers === undefined ? {} : { ciphers: options.ciphers }),
        ...(options.session === undefined ? {} : { session: options.session }),
      },
      (res) => {
        const socket = res.socket as tls.TLSSocket;
        const resumed = socket.isSessionReused();
        const fingerprint256 = socket.getPeerCertificate?.()?.fingerprint256;
        const alpn = socket.alpnProtocol;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const parsed = backendOf(res.headers, body);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            backend: parsed.backend,
            backendUrl: parsed.url,
            fingerprint256,
            alpn,
            session,
            resumed,
          });
        });
      },
    );
    let session: Buffer | undefined;
    req.on('socket', (socket) => socket.on('session', (ticket: Buffer) => (session = ticket)));
    req.on('timeout', () => req.destroy(new Error(`HTTPS request timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface Http2Options {
  readonly servername: string;
  /** :authority; the SNI name by default. */
  readonly authority?: string;
  readonly path?: string;
  readonly ALPNProtocols?: readonly string[];
  readonly timeoutMs?: number;
}

/** One GET over a new HTTP/2 connection (TLS, ALPN h2 offered); rejects when HTTP/2 does not work. */
export function http2Get(port: number, options: Http2Options): Promise<HttpsReply> {
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    let done = false;
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      servername: options.servername,
      rejectUnauthorized: false,
      ALPNProtocols: [...(options.ALPNProtocols ?? ['h2'])],
    });
    const finish = (error: Error | undefined, reply?: HttpsReply) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.destroy();
      if (error) reject(error);
      else resolve(reply!);
    };
    const timer = setTimeout(() => finish(new Error(`HTTP/2 request timed out after ${timeoutMs} ms`)), timeoutMs);
    session.on('error', (error) => finish(error));
    const stream = session.request({ ':method': 'GET', ':path': options.path ?? '/', ':authority': options.authority ?? options.servername });
    stream.on('error', (error) => finish(error));
    stream.on('response', (headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const plain: IncomingHttpHeaders = {};
        for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':')) plain[name] = value as string | string[];
        const parsed = backendOf(plain, body);
        const socket = session.socket as tls.TLSSocket | undefined;
        finish(undefined, {
          status: Number(headers[':status']),
          headers: plain,
          body,
          backend: parsed.backend,
          backendUrl: parsed.url,
          fingerprint256: socket?.getPeerCertificate?.()?.fingerprint256,
          alpn: socket?.alpnProtocol ?? null,
        });
      });
    });
    stream.end();
  });
}

// ---- load ----

export interface LoadOptions {
  readonly port: number;
  readonly servername: string;
  readonly host?: string;
  readonly path?: string;
  /** The test backend that must answer every request. */
  readonly backend: string;
  /** Clients that open a new connection (full handshake) for every request. */
  readonly newConnectionClients: number;
  /** Clients that keep one connection open and send request after request on it. */
  readonly keepAliveClients: number;
  /** Verify the server (chain against this CA, and the host name): a wrong certificate then fails the request. */
  readonly ca?: string;
  readonly timeoutMs?: number;
}

export interface LoadStats {
  readonly requests: number;
  readonly failures: number;
  readonly newConnection: { readonly requests: number; readonly failures: number };
  readonly keepAlive: { readonly requests: number; readonly failures: number };
  /** The first failures, as messages. */
  readonly errors: readonly string[];
  /** Certificates the new-connection clients were served, by fingerprint: how many requests saw each. */
  readonly certs: ReadonlyMap<string, number>;
  readonly elapsedMs: number;
}

export interface HttpsLoad {
  stats(): LoadStats;
  /** Stops every client after its current request; resolves with the totals. */
  stop(): Promise<LoadStats>;
}

/** Constant HTTPS load: every request must be answered 200 by `backend`, anything else counts as a failure. */
export function startHttpsLoad(options: LoadOptions): HttpsLoad {
  let stopped = false;
  const started = performance.now();
  let finishedAt: number | undefined;
  const counts = { newConnection: { requests: 0, failures: 0 }, keepAlive: { requests: 0, failures: 0 } };
  const errors: string[] = [];
  const certs = new Map<string, number>();
  const agents: https.Agent[] = [];

  const client = async (kind: 'newConnection' | 'keepAlive') => {
    const agent = kind === 'keepAlive' ? new https.Agent({ keepAlive: true, maxSockets: 1, maxCachedSessions: 0 }) : false;
    if (agent) agents.push(agent);
    let i = 0;
    while (!stopped) {
      counts[kind].requests++;
      try {
        const reply = await httpsGet(options.port, {
          path: `${options.path ?? '/load'}?${kind}-${i++}`,
          servername: options.servername,
          host: options.host,
          agent,
          ...(options.ca === undefined ? {} : { ca: options.ca, rejectUnauthorized: true }),
          timeoutMs: options.timeoutMs ?? 5000,
        });
        if (reply.status !== 200 || reply.backend !== options.backend) {
          throw new Error(`answered ${reply.status} by ${reply.backend ?? 'no test backend'}: ${reply.body.slice(0, 120)}`);
        }
        if (kind === 'newConnection' && reply.fingerprint256) certs.set(reply.fingerprint256, (certs.get(reply.fingerprint256) ?? 0) + 1);
      } catch (error) {
        counts[kind].failures++;
        if (errors.length < 20) errors.push(`${kind}: ${(error as NodeJS.ErrnoException).code ?? ''} ${(error as Error).message}`.trim());
      }
    }
  };
  const clients = [
    ...Array.from({ length: options.newConnectionClients }, () => client('newConnection')),
    ...Array.from({ length: options.keepAliveClients }, () => client('keepAlive')),
  ];
  const stats = (): LoadStats => ({
    requests: counts.newConnection.requests + counts.keepAlive.requests,
    failures: counts.newConnection.failures + counts.keepAlive.failures,
    newConnection: { ...counts.newConnection },
    keepAlive: { ...counts.keepAlive },
    errors: [...errors],
    certs: new Map(certs),
    elapsedMs: Math.round((finishedAt ?? performance.now()) - started),
  });
  return {
    stats,
    async stop() {
      stopped = true;
      await Promise.all(clients);
      finishedAt = performance.now();
      for (const agent of agents) agent.destroy();
      return stats();
    },
  };
}

/** A certificate as the environment provides it (SSL_CERT_<name>), for startTestEdgelb's envCerts. */
export function envCert(name: string, pem: string): RawCert {
  return { source: { kind: 'env', ref: name }, pem };
}
