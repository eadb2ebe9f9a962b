import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readServerStats } from '../../src/admin/haproxy-stats.js';
import { statePaths } from '../../src/pipeline/settings-of.js';
import { startApp, type App } from '../support/apps.js';
import type { TestEdgelb } from '../support/edgelb.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { expectRoute, putKeys, settled, startLbWith } from '../support/lb.js';
import { startLoad } from '../support/load.js';
import { freePort } from '../support/ports.js';
import { request } from '../support/requests.js';
import { waitFor } from '../support/wait.js';

// The controller's own first health check. HAProxy's check interval is a minute here, so its
// checks cannot be what lets an instance in within these deadlines: only the controller's probe
// can. An instance that fails the probe must get no request at all.

let etcd: EtcdServer;
let lb: TestEdgelb;
const apps: Record<string, App> = {};
let refusedPort: number;

const notHealth = (app: App) => app.requests.filter((r) => r.url !== '/healthz');

beforeAll(async () => {
  etcd = await startEtcd();
  for (const name of ['first', 'added', 'sick', 'fresh', 'moveA', 'moveB']) apps[name] = await startApp({ name, healthPath: '/healthz' });
  apps.sick!.healthStatus = 500;
  refusedPort = await freePort();
  lb = await startLbWith(
    etcd,
    {
      'services/first/virtual_hosts': 'first.test',
      'services/first/health_check_uri': '/healthz',
      'services/first/upstreams/first': apps.first!.address,
      'services/first/upstreams/sick': apps.sick!.address,
      'services/first/upstreams/refused': `127.0.0.1:${refusedPort}`,
    },
    { KONTENA_LB_CHECK_INTERVAL: '60s' },
  );
});

afterAll(async () => {
  await lb?.stopAll();
  await Promise.all(Object.values(apps).map((a) => a.close()));
  await etcd?.stop();
});

async function serverStat(proxy: string, server: string) {
  const stats = await readServerStats(statePaths(lb.config.stateDir).adminSocket);
  return stats.find((s) => s.proxy === proxy && s.server === server);
}

describe('at the first start', () => {
  it('serves a healthy instance at once and sends nothing to one failing its check or refusing connections', async () => {
    await expectRoute(lb, '/', 'first.test', 'first');
    for (let i = 0; i < 20; i++) expect((await request(lb.httpPort, { host: 'first.test' })).backend).toBe('first');
    expect(notHealth(apps.sick!)).toEqual([]);
    const refused = await serverStat('http-first', 'refused');
    expect(refused).toMatchObject({ health: 'down', totalSessions: 0 });
  });
});

describe('an instance added through the runtime API', () => {
  it("gets traffic as soon as the probe passes, long before HAProxy's first check", async () => {
    const reloads = lb.controller.status().counters.reloads;
    const revision = await putKeys(etcd, lb, { 'services/first/upstreams/added': apps.added!.address });
    await settled(lb, revision);
    // 5 s, where HAProxy's own first check is up to a minute away.
    await waitFor(async () => (await request(lb.httpPort, { host: 'first.test' })).backend === 'added', {
      timeoutMs: 5000,
      what: 'the added instance to receive a request',
    });
    expect(lb.controller.status().counters.reloads).toBe(reloads);
  });

  it('gets none while it fails the check', async () => {
    const other = await startApp({ name: 'sick2', healthPath: '/healthz' });
    other.healthStatus = 503;
    try {
      const revision = await putKeys(etcd, lb, { 'services/first/upstreams/sick2': other.address });
      await settled(lb, revision);
      await waitFor(() => other.requests.some((r) => r.url === '/healthz'), { timeoutMs: 5000, what: 'the probe to reach the instance' });
      for (let i = 0; i < 20; i++) await request(lb.httpPort, { host: 'first.test' });
      expect(notHealth(other)).toEqual([]);
    } finally {
      await other.close();
    }
  });
});

describe('a service applied by a reload', () => {
  it('answers 200 as soon as its instance is proven', async () => {
    const revision = await putKeys(etcd, lb, {
      'services/fresh/virtual_hosts': 'fresh.test',
      'services/fresh/health_check_uri': '/healthz',
      'services/fresh/upstreams/fresh': apps.fresh!.address,
    });
    await settled(lb, revision);
    await expectRoute(lb, '/', 'fresh.test', 'fresh');
    expect(apps.fresh!.requests.some((r) => r.url === '/healthz')).toBe(true);
  });
});

describe('a re-address (a redeploy keeping the instance name)', () => {
  it('never opens a gap: no request fails while the single instance moves back and forth', async () => {
    let revision = await putKeys(etcd, lb, {
      'services/move/virtual_hosts': 'move.test',
      'services/move/upstreams/move-1': apps.moveA!.address,
    });
    await settled(lb, revision);
    await expectRoute(lb, '/', 'move.test', 'moveA');
    const reloads = lb.controller.status().counters.reloads;
    const load = startLoad({ port: lb.httpPort, host: 'move.test', keepAliveClients: 2, newConnectionClients: 2, maxDurationMs: 60_000 });
    try {
      for (let i = 0; i < 6; i++) {
        const to = i % 2 === 0 ? apps.moveB! : apps.moveA!;
        const before = notHealth(to).length;
        revision = await putKeys(etcd, lb, { 'services/move/upstreams/move-1': to.address });
        await settled(lb, revision);
        await waitFor(() => notHealth(to).length > before + 3, { timeoutMs: 5000, what: `traffic to move to ${to.name}` });
      }
    } finally {
      const summary = await load.stop();
      expect(summary.requests).toBeGreaterThan(50);
      expect(summary.failed, summary.examples.join('; ')).toBe(0);
    }
    expect(lb.controller.status().counters.reloads).toBe(reloads);
  });
});

describe('what an operator sees', () => {
  it('counts the first probes in /status and /metrics', async () => {
    const status = (await (await fetch(`http://127.0.0.1:${lb.config.adminPort}/status`)).json()) as {
      probes: { proven: number; gaveUp: number; pending: number };
    };
    // first, added, fresh, the move's instance and its six moves were proven; sick, refused and
    // sick2 were not (still retried, or given up, depending on how long the tests took).
    expect(status.probes.proven).toBeGreaterThanOrEqual(10);
    expect(status.probes.gaveUp + status.probes.pending).toBeGreaterThanOrEqual(3);
    const metrics = await (await fetch(`http://127.0.0.1:${lb.config.adminPort}/metrics`)).text();
    expect(metrics).toContain(`edgelb_first_probes_total{result="proven"} ${status.probes.proven}`);
  });
});
