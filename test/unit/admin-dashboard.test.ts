import http from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isLoopbackBind } from '../../src/admin/dashboard/auth.js';
import { LiveFeed, type Sections } from '../../src/admin/dashboard/feed.js';
import { ApplyHistory } from '../../src/admin/dashboard/history.js';
import { renderSections } from '../../src/admin/dashboard/sections.js';
import { startAdminServer, type AdminServer } from '../../src/admin/server.js';
import type { AdminInputs, StatusReport } from '../../src/admin/status.js';
import { createLogger } from '../../src/log.js';

// The dashboard's HTTP side without HAProxy or etcd: who may see it, its content types and
// caching, and that everything written to etcd reaches the page escaped.

function inputs(): AdminInputs {
  return {
    version: '1.2.3',
    etcdPrefix: '/p',
    controller: {
      status: () => ({
        revision: undefined,
        state: undefined,
        certs: { all: [], served: [], rejected: [], warnings: [] },
        rejected: [{ key: 'services/x/virtual_hosts', code: 'invalid_value', reason: 'host "<b>x</b>" is not valid' }],
        warnings: [],
        excluded: [],
        lastApply: undefined,
        counters: { applies: 0, reloads: 0, starts: 0, unchanged: 0, failures: 0, runtimeUpdates: 0 },
        certificateWarnings: [],
      }),
    } as never,
    haproxy: { running: false, isStarting: false, pid: undefined, restartCount: 0 },
    etcd: { status: () => ({ connected: true, api: 'v3', apiReason: undefined, endpoints: ['http://e:2379'], failure: undefined }) } as never,
    renderSettings: {} as never,
    serverStats: async () => [],
  };
}

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

function get(port: number, path: string, headers: http.OutgoingHttpHeaders = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
  });
}

/** The first event of /events, then the request is dropped. */
function firstEvent(port: number): Promise<{ type: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/events', timeout: 5000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString('utf8');
        if (text.includes('\n\n')) {
          resolve({ type: res.headers['content-type'], text });
          req.destroy();
        }
      });
    });
    req.on('error', reject);
  });
}

const logs: string[] = [];
const logger = createLogger('warn', false, {
  write: (line: string) => {
    logs.push(line);
    return true;
  },
} as never);
let server: AdminServer | undefined;

async function start(host: string, password?: string): Promise<number> {
  server = startAdminServer({ port: 0, host, inputs: inputs(), haproxyMetrics: async () => '', logger, password, dashboardTickMs: 50 });
  return server.listening;
}

afterEach(async () => {
  await server?.close();
  server = undefined;
  logs.length = 0;
});

describe('the dashboard on the admin port', () => {
  it('serves the page, its files and the event stream with their types and caching on loopback', async () => {
    const port = await start('127.0.0.1');
    const page = await get(port, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    // The page has no inline script or style: the policy above would block them.
    expect(page.body).not.toMatch(/<script>|<style|style="/);
    expect(page.body).toContain('&#60;b&#62;x&#60;/b&#62;');
    const src = /src="(\/dashboard\/dashboard\.js\?v=[0-9a-f]{12})"/.exec(page.body)?.[1];
    expect(src).toBeDefined();
    const js = await get(port, src ?? '');
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    const unversioned = await get(port, '/dashboard/dashboard.css');
    expect(unversioned.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(unversioned.headers['cache-control']).toBe('no-cache');
    expect((await get(port, '/dashboard/dashboard.css', { 'if-none-match': String(unversioned.headers.etag) })).status).toBe(304);
    expect((await get(port, '/dashboard/../package.json')).status).toBe(404);
    const event = await firstEvent(port);
    expect(event.type).toBe('text/event-stream; charset=utf-8');
    expect(event.text).toMatch(/^retry: 2000\nevent: sections\ndata: \{.*"rejected":/);
  });

  it('asks for the password when one is set, and never shows it', async () => {
    const port = await start('127.0.0.1', 's3cret!');
    const anonymous = await get(port, '/');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Basic realm=/);
    expect((await get(port, '/events', { authorization: `Basic ${Buffer.from('admin:wrong').toString('base64')}` })).status).toBe(401);
    const signedIn = await get(port, '/', { authorization: `Basic ${Buffer.from('admin:s3cret!').toString('base64')}` });
    expect(signedIn.status).toBe(200);
    expect(signedIn.body).not.toContain('s3cret!');
    // The probe and Prometheus keep working as before.
    expect((await get(port, '/healthz')).status).toBe(503);
    expect((await get(port, '/metrics')).status).toBe(200);
  });

  it('refuses the dashboard on a non-loopback bind without a password, with a warning, and leaves /status open', async () => {
    const port = await start('0.0.0.0');
    const refused = await get(port, '/');
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('KONTENA_LB_ADMIN_PASSWORD');
    expect((await get(port, '/status')).status).toBe(200);
    expect(logs.join('')).toContain('the dashboard is off');
  });

  it('on a loopback bind without a password, serves only a browser that asked for a loopback name (no DNS rebinding)', async () => {
    const port = await start('127.0.0.1');
    expect((await get(port, '/')).status).toBe(200);
    expect((await get(port, '/', { host: `localhost:${port}` })).status).toBe(200);
    expect((await get(port, '/', { host: `[::1]:${port}` })).status).toBe(200);
    expect((await get(port, '/', { host: `rebound.example.com:${port}` })).status).toBe(403);
    expect((await get(port, '/events', { host: 'rebound.example.com' })).status).toBe(403);
  });

  it('knows loopback binds', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].map(isLoopbackBind)).toEqual([true, true, true, true]);
    expect(['0.0.0.0', '::', '10.0.0.1', '128.0.0.1'].map(isLoopbackBind)).toEqual([false, false, false, false]);
  });
});

describe('the dashboard sections', () => {
  it('escapes what etcd holds and gives every state a word besides its colour', () => {
    const status = {
      version: '1',
      time: '2026-01-01T00:00:00.000Z',
      health: { status: 'ok', reason: null },
      haproxy: { running: true, pid: 1, restarts: 0, statsError: null },
      etcd: { connected: true, prefix: '/p', revision: '3', api: 'v3', apiReason: null, endpoints: [], error: null },
      lastApply: null,
      counters: { applies: 1, reloads: 0, starts: 1, unchanged: 0, failures: 0, runtimeUpdates: 0 },
      probes: { proven: 0, gaveUp: 0, pending: 0 },
      services: [
        {
          kind: 'http',
          name: 'web',
          hosts: ['<img src=x onerror=alert(1)>'],
          paths: [],
          port: null,
          instances: [{ name: 'w"1', address: '10.0.0.1:80', health: 'down', check: 'L4CON', lastChangeSeconds: 90, currentSessions: 0, sessionRate: 0 }],
        },
      ],
      routes: [],
      certificates: [],
      rejected: [],
      warnings: [],
      excluded: [],
      certificatesRejected: [],
      certificateSelectionWarnings: [],
      certificateWarnings: [{ kind: 'expiring', subject: 'env-<b>', detail: 'expires soon', since: '2026-11-13T12:00:00.000Z' }],
    } as unknown as StatusReport;
    const sections = renderSections({ status, applies: [], acme: undefined });
    expect(sections.services).toContain('&#60;img src=x onerror=alert(1)&#62;');
    expect(sections.services).not.toContain('<img');
    expect(sections.instances).toContain('w&#34;1');
    expect(sections.instances).toMatch(/class="badge bad"[^>]*><span aria-hidden="true">✖ <\/span>down</);
    expect(sections.instances).toContain('<th scope="row">');
    expect(sections.acme).toContain('off');
    expect(sections.certificates).toContain('env-&#60;b&#62;');
    expect(sections.certificates).toMatch(/class="badge bad"[^>]*><span aria-hidden="true">✖ <\/span>expiring</);
    const acme = renderSections({
      status,
      applies: [],
      acme: {
        leader: true,
        skipped: [{ domain: 'x.test', reason: 'not routed', source: 'services/x' }],
        domains: [
          {
            domain: 'a.test',
            challenge: 'http-01',
            state: {
              domain: 'a.test',
              status: 'failing',
              failures: 2,
              lastError: { at: '2026-01-01T00:00:00Z', message: 'rate <limited>' },
              updatedAt: '2026-01-01T00:00:00Z',
            },
            certificate: undefined,
            running: false,
            next: 'retry at 01:00',
          },
        ],
      },
    }).acme;
    expect(acme).toContain('this replica is the leader');
    expect(acme).toMatch(/badge bad[^>]*><span aria-hidden="true">✖ <\/span>failing</);
    expect(acme).toContain('rate &#60;limited&#62;');
    expect(acme).toContain('not routed (services/x)');
  });
});

describe('the live feed and the apply history', () => {
  it('renders once per tick for every stream, and only while one is open', async () => {
    vi.useFakeTimers();
    try {
      let renders = 0;
      const feed = new LiveFeed(async () => ({ overview: String(++renders) }) as unknown as Sections, 20, logger);
      const seen: string[][] = [[], []];
      const stops = seen.map((list) => feed.subscribe((s) => list.push(s.overview)));
      await vi.advanceTimersByTimeAsync(100);
      // 100 ms of 20 ms ticks, plus the first render at once: both streams got the same six.
      expect(renders).toBe(6);
      expect(seen[0]).toEqual(['1', '2', '3', '4', '5', '6']);
      expect(seen[1]).toEqual(seen[0]);
      for (const stop of stops) stop();
      await vi.advanceTimersByTimeAsync(1000);
      expect(renders).toBe(6);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps each apply once, newest first, up to its size', () => {
    let last: { at: string; revision: string } | undefined;
    const history = new ApplyHistory(() => last as never, 2, 60_000);
    try {
      for (const revision of ['1', '1', '2', '3']) {
        last = { at: `2026-01-01T00:00:0${revision}Z`, revision };
        history.sample();
      }
      expect(history.list().map((r) => r.revision)).toEqual(['3', '2']);
    } finally {
      history.stop();
    }
  });
});
