import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EdgelbError } from '../errors.js';
import type { AcmeStatus } from '../acme/manager.js';
import type { Logger } from '../log.js';
import { createDashboard } from './dashboard/dashboard.js';
import { createControllerMetrics } from './metrics.js';
import { buildStatus, healthOf, type AdminInputs } from './status.js';

export interface AdminServerOptions {
  readonly port: number;
  readonly host: string;
  readonly inputs: AdminInputs;
  /** HAProxy's own metrics (its built-in Prometheus exporter), appended to /metrics. */
  readonly haproxyMetrics: () => Promise<string>;
  readonly logger: Logger;
  /** KONTENA_LB_ADMIN_PASSWORD: the dashboard's basic auth (user admin). */
  readonly password?: string | undefined;
  /** The ACME manager's view for the dashboard, when Let's Encrypt is on. */
  readonly acme?: () => AcmeStatus | undefined;
  /** How often the dashboard's event streams are brought up to date (default 1 s). */
  readonly dashboardTickMs?: number;
}

export interface AdminServer {
  /** Resolves with the port once listening; rejects when the port cannot be bound. */
  readonly listening: Promise<number>;
  close(): Promise<void>;
}

/**
 * The admin port: `/healthz` for probes, `/status` (JSON) for people and `edgelb status`,
 * `/metrics` for Prometheus, and the dashboard at `/` (dashboard/). Plain node:http: a few
 * read-only GET routes need no framework.
 * Bound to loopback unless KONTENA_LB_ADMIN_BIND says otherwise: /status names every backend.
 */
export function startAdminServer(options: AdminServerOptions): AdminServer {
  const { inputs, logger } = options;
  const metrics = createControllerMetrics(inputs);
  const dashboard = createDashboard({
    inputs,
    bind: options.host,
    password: options.password,
    logger,
    ...(options.acme ? { acme: options.acme } : {}),
    ...(options.dashboardTickMs !== undefined ? { tickMs: options.dashboardTickMs } : {}),
  });
  const server = http.createServer((req, res) => {
    void handle(req, res).catch((error: Error) => {
      logger.error({ err: error.message, path: req.url }, 'admin request failed');
      if (!res.headersSent) send(res, 500, 'application/json', json({ error: error.message }));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  server.requestTimeout = 10_000;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://admin').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'application/json', json({ error: `${req.method} is not allowed; use GET` }));
    }
    if (await dashboard.handle(req, res, path)) return;
    switch (path) {
      case '/healthz': {
        const health = healthOf(inputs);
        return send(res, health.status === 'unavailable' ? 503 : 200, 'application/json', json(health));
      }
      case '/status':
        return send(res, 200, 'application/json', json(await buildStatus(inputs)));
      case '/metrics':
        return send(res, 200, metrics.contentType, await metricsText());
      default:
        return send(res, 404, 'application/json', json({ error: `no such endpoint ${path}; try /, /healthz, /status or /metrics` }));
    }
  }

  /** edgelb's own metrics, then HAProxy's exporter's text as it answered (its haproxy_* families). */
  async function metricsText(): Promise<string> {
    let haproxy = '';
    let up = false;
    if (inputs.haproxy.running) {
      try {
        haproxy = await options.haproxyMetrics();
        up = true;
      } catch (error) {
        logger.debug({ err: (error as Error).message }, 'cannot read HAProxy metrics');
      }
    }
    return `${await metrics.scrape(up)}${haproxy}`;
  }

  const listening = new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
  listening.then(
    (port) =>
      logger.info(
        { address: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`, endpoints: ['/', '/healthz', '/status', '/metrics'] },
        'admin port listening',
      ),
    (error: NodeJS.ErrnoException) =>
      logger.error(
        { err: error.message, port: options.port, host: options.host },
        'cannot open the admin port (KONTENA_LB_ADMIN_PORT); serving traffic without /healthz, /status and /metrics',
      ),
  );
  return {
    listening,
    close: () =>
      new Promise((resolve) => {
        dashboard.close();
        server.closeAllConnections();
        server.close(() => resolve());
        if (!server.listening) resolve();
      }),
  };
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** GETs a path from an HTTP server on a unix socket (HAProxy's exporter frontend); rejects on non-200. */
export function getFromUnixSocket(socketPath: string, path: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode === 200) resolve(Buffer.concat(chunks).toString('utf8'));
        else reject(new EdgelbError('http_status', `${socketPath}${path} answered ${res.statusCode}`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new EdgelbError('http_timeout', `${socketPath}${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', (error) => reject(error instanceof EdgelbError ? error : new EdgelbError('http_unreachable', error.message, { cause: error })));
  });
}
