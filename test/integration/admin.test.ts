import http from 'node:http';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../src/admin/status.js';
import type { Backend } from '../support/backend.js';
import { makeLeaf, removeCertFiles, type LeafCert } from '../support/certs.js';
import { startTestEdgelb, type TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { closeBackends, expectRoute, startBackends, startEchoServer, startLbWith, type EchoServer } from '../support/lb.js';
import { freePort } from '../support/ports.js';
import { parsePrometheusText, samplesOf, sampleValue } from '../support/prometheus.js';
import { envCert } from '../support/tls.js';
import { waitFor } from '../support/wait.js';

// The admin port (/healthz, /status, /metrics) of a real controller with its HAProxy and etcd.

interface AdminReply {
  readonly status: number;
  readonly type: string;
  readonly body: string;
}

function admin(lb: TestEdgelb, path: string, method = 'GET'): Promise<AdminReply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: lb.config.adminPort, path, method, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`admin ${path}: no answer`)));
    req.on('error', reject);
    req.end();
  });
}

async function status(lb: TestEdgelb): Promise<StatusReport> {
  const reply = await admin(lb, '/status');
  expect(reply.status).toBe(200);
  expect(reply.type).toMatch(/^application\/json/);
  return JSON.parse(reply.body) as StatusReport;
}

const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');

/** `edgelb status` as an operator runs it, in a clean environment. */
function edgelbStatus(port: number, ...args: string[]) {
  return execa('node', ['--import', 'tsx', MAIN, 'status', '--admin-port', String(port), ...args], {
    env: { PATH: process.env.PATH ?? '' },
    extendEnv: false,
    reject: false,
    timeout: 30_000,
  });
}

let etcd: EtcdServer;
let backends: Record<'web1', Backend>;
let echo: EchoServer;
let lb: TestEdgelb;
let cert: LeafCert;
let deadPort: number;
let tcpPort: number;

beforeAll(async () => {
  etcd = await startEtcd();
  backends = await startBackends('web1');
  echo = await startEchoServer();
  cert = await makeLeaf({ names: ['admin.example.com'], days: 40 });
  deadPort = await freePort();
  tcpPort = await freePort();
  lb = await startLbWith(
    etcd,
    {
      'services/web/virtual_hosts': 'admin.example.com,*.admin.example.com',
      'services/web/upstreams/web-1': backends.web1.address,
      'services/web/upstreams/web-dead': `127.0.0.1:${deadPort}`,
      'services/api/virtual_path': '/api',
      'services/api/upstreams/api-1': backends.web1.address,
      'services/bad/virtual_hosts': 'not a host!',
      'services/bad/upstreams/x': backends.web1.address,
      'services/web/upstreams/web-typo': 'nowhere',
      'tcp-services/echo/external_port': String(tcpPort),
      'tcp-services/echo/upstreams/echo-1': echo.address,
    },
    {},
    { envCerts: [envCert('SSL_CERT_admin', cert.bundlePem)] },
  );
  await expectRoute(lb, '/', 'admin.example.com', 'web1');
});

afterAll(async () => {
  await lb?.stopAll();
  await echo?.close();
  await closeBackends(backends);
  await etcd?.stop();
  removeCertFiles();
});

describe('admin port', () => {
  it('answers /healthz with 200 and a JSON status while HAProxy serves the latest config', async () => {
    const reply = await admin(lb, '/healthz');
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toEqual({ status: 'ok', reason: null });
    expect((await admin(lb, '/healthz', 'HEAD')).status).toBe(200);
  });

  it('reports services, routes in precedence order, instance health from HAProxy, certificates and rejections on /status', async () => {
    // The dead instance goes down after its health checks fail (fall 3, inter 2s).
    const report = await waitFor(
      async () => {
        const s = await status(lb);
        const web = s.services.find((x) => x.name === 'web');
        return web?.instances.find((i) => i.name === 'web-dead')?.health === 'down' && s;
      },
      { timeoutMs: 20_000, what: 'web-dead to be reported down' },
    );

    expect(report.health.status).toBe('ok');
    expect(report.haproxy).toMatchObject({ running: true, restarts: 0, statsError: null });
    expect(report.etcd).toMatchObject({ connected: true, prefix: lb.prefix, api: 'v3', endpoints: [etcd.endpoint], error: null });
    expect(report.lastApply?.action).not.toBe('failed');
    expect(report.counters.applies).toBeGreaterThanOrEqual(1);

    const web = report.services.find((s) => s.name === 'web')!;
    expect(web).toMatchObject({ kind: 'http', hosts: ['admin.example.com', '*.admin.example.com'], paths: [] });
    expect(web.instances.map((i) => [i.name, i.address, i.health])).toEqual([
      ['web-1', backends.web1.address, 'up'],
      ['web-dead', `127.0.0.1:${deadPort}`, 'down'],
    ]);
    // INI: up on the controller's first probe, before HAProxy's own first check (within its interval).
    expect(web.instances[0]!.check).toMatch(/^L4OK|^L7OK|^INI$/);
    const echoService = report.services.find((s) => s.name === 'echo')!;
    expect(echoService).toMatchObject({ kind: 'tcp', port: tcpPort });
    expect(echoService.instances.map((i) => i.name)).toEqual(['echo-1']);
    expect(report.services.some((s) => s.name === 'bad')).toBe(false);

    expect(report.routes).toEqual([
      { order: 1, service: 'web', hosts: ['admin.example.com'], path: null },
      { order: 2, service: 'web', hosts: ['*.admin.example.com'], path: null },
      { order: 3, service: 'api', hosts: [], path: '/api' },
    ]);

    expect(report.certificates).toHaveLength(1);
    expect(report.certificates[0]).toMatchObject({ source: 'env:SSL_CERT_admin', names: ['admin.example.com'], served: true, default: true, expired: false });
    expect(report.certificates[0]!.daysLeft).toBeGreaterThanOrEqual(38);
    expect(report.certificates[0]!.daysLeft).toBeLessThanOrEqual(40);

    expect(report.rejected.map((r) => r.key).sort()).toEqual(['services/bad/virtual_hosts', 'services/web/upstreams/web-typo']);
    expect(JSON.stringify(report)).not.toContain('PRIVATE KEY');
  });

  it("serves Prometheus metrics: the controller's and HAProxy's own, in valid exposition format", async () => {
    const reply = await admin(lb, '/metrics');
    expect(reply.status).toBe(200);
    expect(reply.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const scrape = parsePrometheusText(reply.body);
    const counters = lb.controller.status().counters;

    expect(sampleValue(scrape, 'edgelb_up')).toBe(1);
    expect(sampleValue(scrape, 'edgelb_applies_total')).toBe(counters.applies);
    expect(sampleValue(scrape, 'edgelb_reloads_total')).toBe(counters.reloads);
    expect(sampleValue(scrape, 'edgelb_starts_total')).toBe(1);
    expect(sampleValue(scrape, 'edgelb_apply_failures_total')).toBe(0);
    expect(scrape.types.get('edgelb_applies_total')).toBe('counter');
    expect(sampleValue(scrape, 'edgelb_etcd_connected')).toBe(1);
    expect(sampleValue(scrape, 'edgelb_etcd_api', { api: 'v3' })).toBe(1);
    expect(sampleValue(scrape, 'edgelb_haproxy_restarts_total')).toBe(0);
    expect(sampleValue(scrape, 'edgelb_last_apply_success')).toBe(1);
    const duration = sampleValue(scrape, 'edgelb_last_apply_duration_seconds');
    expect(duration).toBeGreaterThan(0);
    expect(duration).toBeLessThan(30);
    expect(sampleValue(scrape, 'edgelb_services', { kind: 'http' })).toBe(2);
    expect(sampleValue(scrape, 'edgelb_services', { kind: 'tcp' })).toBe(1);

    // Reasons are a bounded class, never the entry's text.
    expect(samplesOf(scrape, 'edgelb_rejected_entries').map((s) => [s.labels.reason, s.value])).toEqual([
      ['invalid_upstream', 1],
      ['invalid_virtual_hosts', 1],
    ]);
    expect(reply.body).not.toContain('not a host');

    const notAfter = new Date(lb.controller.status().certs.all[0]!.notAfter).getTime() / 1000;
    expect(sampleValue(scrape, 'edgelb_certificate_expiry_timestamp_seconds', { source: 'env', name: 'admin.example.com', served: 'true' })).toBe(
      Math.floor(notAfter),
    );

    // HAProxy's built-in exporter, read from its unix socket.
    expect(sampleValue(scrape, 'edgelb_haproxy_metrics_up')).toBe(1);
    expect(samplesOf(scrape, 'haproxy_process_nbproc').length + samplesOf(scrape, 'haproxy_process_start_time_seconds').length).toBeGreaterThan(0);
    expect(sampleValue(scrape, 'haproxy_server_status', { proxy: 'http-web', server: 'web-1', state: 'UP' })).toBe(1);
    expect(sampleValue(scrape, 'haproxy_backend_active_servers', { proxy: 'tcp-echo' })).toBe(1);
  });

  it('updates the rejected-entries metric when an entry is fixed', async () => {
    await lb.put('services/bad/virtual_hosts', 'bad.example.com');
    await waitFor(
      async () => {
        const scrape = parsePrometheusText((await admin(lb, '/metrics')).body);
        return (
          samplesOf(scrape, 'edgelb_rejected_entries', { reason: 'invalid_virtual_hosts' }).length === 0 &&
          sampleValue(scrape, 'edgelb_services', { kind: 'http' }) === 3
        );
      },
      { what: 'the fixed entry to leave edgelb_rejected_entries' },
    );
  });

  it('answers unknown paths with 404 and other methods with 405, both in JSON', async () => {
    const missing = await admin(lb, '/nope');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body).error).toContain('/healthz');
    const post = await admin(lb, '/status', 'POST');
    expect(post.status).toBe(405);
  });
});

describe('edgelb status', () => {
  it("prints the running controller's services, routes, instances, certificates and problems; exit 0 when healthy", async () => {
    await waitFor(async () => (await status(lb)).services.find((s) => s.name === 'web')?.instances.some((i) => i.health === 'down'), {
      timeoutMs: 20_000,
      what: 'web-dead down',
    });
    const result = await edgelbStatus(lb.config.adminPort);
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toMatch(/^edgelb \S+ \(http:\/\/127\.0\.0\.1:\d+\/status\): healthy$/);
    expect(lines).toContainEqual(expect.stringMatching(/^HAProxy: +running, pid \d+, 0 restarts$/));
    expect(lines).toContainEqual(
      expect.stringMatching(/^etcd: +watching \/kontena\/haproxy\/\S+\/ through the etcd v3 API at http:\/\/127\.0\.0\.1:\d+, applied revision \d+$/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^SERVICE +KIND +HOSTS \/ PORT +PATHS +INSTANCES UP$/));
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^web +http +admin\.example\.com,\*\.admin\.example\.com +- +1\/3$|^web +http +admin\.example\.com,\*\.admin\.example\.com +- +1\/2$/,
      ),
    );
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^echo +tcp +:${tcpPort} +- +1/1$`)));
    expect(lines).toContainEqual(expect.stringMatching(/^\d +admin\.example\.com +\* +web$/));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^web +web-dead +127\\.0\\.0\\.1:${deadPort} +down +`)));
    expect(lines).toContainEqual(expect.stringMatching(/ +env:SSL_CERT_admin +admin\.example\.com +\S+ +\d+ +yes \(default\)$/));
    expect(lines).toContainEqual(expect.stringMatching(/^entry rejected +services\/web\/upstreams\/web-typo +upstream "nowhere" is not host:port$/));

    const json = await edgelbStatus(lb.config.adminPort, '--json');
    expect(json.exitCode).toBe(0);
    const report = JSON.parse(json.stdout) as StatusReport;
    expect(report.health.status).toBe('ok');
    expect(report.services.map((s) => s.name).sort()).toEqual(['api', 'bad', 'echo', 'web']);
  });

  it('fails in one line with a hint when no edgelb answers (exit 2)', async () => {
    const result = await edgelbStatus(await freePort());
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim()).toMatch(
      /^edgelb: cannot reach edgelb's admin port at http:\/\/127\.0\.0\.1:\d+\/status \(ECONNREFUSED\); is "edgelb run" running here with this KONTENA_LB_ADMIN_PORT\?$/,
    );
  });
});

describe('an admin port that cannot be opened', () => {
  it('is logged with the reason, and traffic is served anyway', async () => {
    const taken = http.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    let other: TestEdgelb | undefined;
    try {
      other = await startLbWith(
        etcd,
        {
          'services/web/virtual_hosts': 'taken.example.com',
          'services/web/upstreams/web-1': backends.web1.address,
        },
        { KONTENA_LB_ADMIN_PORT: String(port) },
      );
      await expectRoute(other, '/', 'taken.example.com', 'web1');
      const line = await waitFor(() => other!.logs.find((l) => String(l.msg).startsWith('cannot open the admin port')), { what: 'the admin port error' });
      expect(line).toMatchObject({
        level: 50,
        component: 'admin',
        port,
        host: '127.0.0.1',
        msg: 'cannot open the admin port (KONTENA_LB_ADMIN_PORT); serving traffic without /healthz, /status and /metrics',
      });
      expect(String(line.err)).toContain('EADDRINUSE');
    } finally {
      await other?.stopAll();
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

describe('admin port of a load balancer that is not serving', () => {
  it('answers /healthz 503 with the reason, and reports etcd disconnected', async () => {
    const nowhere: EtcdServer = { ...etcd, endpoint: `http://127.0.0.1:${await freePort()}` };
    const down = await startTestEdgelb(nowhere);
    try {
      const reply = await waitFor(() => admin(down, '/healthz').catch(() => undefined), { what: 'the admin port to answer' });
      expect(reply.status).toBe(503);
      expect(JSON.parse(reply.body)).toEqual({ status: 'unavailable', reason: 'HAProxy is not running (no config applied yet)' });
      const scrape = parsePrometheusText((await admin(down, '/metrics')).body);
      expect(sampleValue(scrape, 'edgelb_up')).toBe(0);
      expect(sampleValue(scrape, 'edgelb_etcd_connected')).toBe(0);
      expect(sampleValue(scrape, 'edgelb_haproxy_metrics_up')).toBe(0);
      expect(samplesOf(scrape, 'edgelb_last_apply_success')).toEqual([]);
      const report = await status(down);
      expect(report.haproxy).toMatchObject({ running: false, statsError: 'HAProxy is not running' });
      expect(report.services).toEqual([]);
      const cli = await edgelbStatus(down.config.adminPort);
      expect(cli.exitCode).toBe(1);
      expect(cli.stdout.split('\n')[0]).toMatch(/: UNAVAILABLE: HAProxy is not running \(no config applied yet\)$/);
      expect(cli.stdout).toContain('no services served');
    } finally {
      await down.stopAll();
    }
  });
});
