import type http from 'node:http';
import type { AcmeStatus } from '../../acme/manager.js';
import type { Logger } from '../../log.js';
import { buildStatus, type AdminInputs } from '../status.js';
import { assetHeaders, loadAssets, type Asset } from './assets.js';
import { dashboardAccess, DASHBOARD_USER, isLoopbackBind } from './auth.js';
import { ApplyHistory } from './history.js';
import { renderPage } from './page.js';
import { LiveFeed, type Sections } from './feed.js';
import { renderSections, type DashboardData, type SectionId } from './sections.js';

export interface DashboardOptions {
  readonly inputs: AdminInputs;
  /** The ACME manager's view, when Let's Encrypt is on. */
  readonly acme?: () => AcmeStatus | undefined;
  readonly bind: string;
  readonly password: string | undefined;
  readonly logger: Logger;
  /** How often an open event stream is brought up to date. */
  readonly tickMs?: number;
}

export interface Dashboard {
  /** Answers the dashboard's paths; false for any other path. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<boolean>;
  close(): void;
}

// The page's own files only; no inline script or style, so the page works under a strict policy.
const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/** The read-only dashboard at `/`: a server-rendered page, its two static files, and `/events` (server-sent events). */
export function createDashboard(options: DashboardOptions): Dashboard {
  const { inputs, logger } = options;
  const assets = assetsOrNone(logger);
  const history = new ApplyHistory(() => inputs.controller.status().lastApply);
  const feed = new LiveFeed(async () => renderSections(await data()), options.tickMs ?? 1000, logger);
  if (options.password === undefined && !isLoopbackBind(options.bind)) {
    logger.warn(
      { bind: options.bind },
      'the dashboard is off: KONTENA_LB_ADMIN_BIND is not a loopback address and KONTENA_LB_ADMIN_PASSWORD is not set (/healthz, /status and /metrics still answer)',
    );
  }

  async function data(): Promise<DashboardData> {
    return { status: await buildStatus(inputs), applies: history.list(), acme: options.acme?.() };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<boolean> {
    const asset = path.startsWith('/dashboard/') ? assets.get(path.slice('/dashboard/'.length)) : undefined;
    if (path !== '/' && path !== '/events' && !asset) return false;
    const access = dashboardAccess(req, options.bind, options.password);
    if (access === 'forbidden') {
      sendText(res, 403, 'The dashboard needs KONTENA_LB_ADMIN_PASSWORD when KONTENA_LB_ADMIN_BIND is not a loopback address.\n');
    } else if (access === 'needs-credentials') {
      res.setHeader('WWW-Authenticate', `Basic realm="edgelb dashboard (user ${DASHBOARD_USER})", charset="UTF-8"`);
      sendText(res, 401, 'Sign in as user admin with KONTENA_LB_ADMIN_PASSWORD.\n');
    } else if (asset) {
      sendAsset(req, res, asset);
    } else if (path === '/') {
      const body = renderPage(await data(), assets);
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
        'Cache-Control': 'no-store',
        ...PAGE_HEADERS,
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    } else {
      stream(req, res);
    }
    return true;
  }

  /** One `sections` event with the parts that changed since this stream's last one (all of them first). */
  function stream(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    if (req.method === 'HEAD') return void res.end();
    // The stream outlives the admin server's request timeout by design.
    req.socket.setTimeout(0);
    let sent: Partial<Sections> = {};
    const unsubscribe = feed.subscribe((sections) => {
      const changed = Object.fromEntries(Object.entries(sections).filter(([id, html]) => sent[id as SectionId] !== html));
      sent = sections;
      // `retry`: the browser reconnects after 2 s when edgelb restarts.
      if (Object.keys(changed).length > 0) res.write(`retry: 2000\nevent: sections\ndata: ${JSON.stringify(changed)}\n\n`);
    });
    res.on('close', unsubscribe);
  }

  return {
    handle,
    close() {
      history.stop();
      feed.stop();
    },
  };
}

/**
 * A missing file (an install that left out src/admin/dashboard/public) must not stop the admin
 * port: the page is then served as plain HTML, without live updates.
 */
function assetsOrNone(logger: Logger): ReadonlyMap<string, Asset> {
  try {
    return loadAssets();
  } catch (error) {
    logger.warn({ err: (error as Error).message }, 'the dashboard files are missing; serving the dashboard without live updates');
    return new Map();
  }
}

function sendText(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendAsset(req: http.IncomingMessage, res: http.ServerResponse, asset: Asset): void {
  const requested = new URL(req.url ?? '/', 'http://admin').searchParams.get('v');
  const headers = assetHeaders(asset, requested);
  if (req.headers['if-none-match'] === headers.ETag) {
    res.writeHead(304, { ETag: headers.ETag ?? '', 'Cache-Control': headers['Cache-Control'] ?? 'no-cache' });
    return void res.end();
  }
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : asset.body);
}
