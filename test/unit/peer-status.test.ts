import { describe, expect, it } from 'vitest';
import { renderSections } from '../../src/admin/dashboard/sections.js';
import type { PeerSession } from '../../src/admin/haproxy-peers.js';
import { createControllerMetrics } from '../../src/admin/metrics.js';
import { PeerMonitor } from '../../src/admin/peer-monitor.js';
import { peersReportOf, trackPeers, type PeerTrack } from '../../src/admin/peer-report.js';
import { buildStatus, type AdminInputs, type StatusReport } from '../../src/admin/status.js';
import { formatStatus } from '../../src/cli/status.js';
import type { PeersSettings } from '../../src/render/peers-view.js';
import { capturingLogger } from '../support/log-capture.js';
import { parsePrometheusText, samplesOf } from '../support/prometheus.js';

// KONTENA_LB_PEERS=etcd: which peers the applied config has, whether HAProxy's session with each
// is up, and a warning (logged once per transition) for one unconnected past the grace period.

const GRACE = 30_000;
const APPLIED: PeersSettings = {
  local: 'lb-a',
  members: [
    { name: 'lb-a', address: '10.0.0.1:7946' },
    { name: 'lb-b', address: '10.0.0.2:7946' },
    { name: 'lb-c', address: '10.0.0.3:7946' },
  ],
};

const session = (name: string, established: boolean, extra: Partial<PeerSession> = {}): PeerSession => ({
  name,
  local: false,
  address: '',
  active: established,
  lastStatus: established ? 'ESTA' : 'CONN',
  established,
  lastHandshakeSeconds: 1,
  reconnectSeconds: null,
  newConnections: 1,
  protocolErrors: 0,
  tables: 2,
  ...extra,
});

describe('trackPeers', () => {
  const step = (tracks: ReadonlyMap<string, PeerTrack>, sessions: PeerSession[], now: number, configured = ['lb-b', 'lb-c']) =>
    trackPeers(tracks, configured, sessions, now, GRACE);

  it('reports a peer down once, only past the grace period, and up once when it is back', () => {
    let t = step(new Map(), [session('lb-b', false), session('lb-c', true)], 0);
    expect(t.transitions).toEqual([]);
    expect([...t.tracks]).toEqual([['lb-b', { downSince: 0, reported: false }]]);
    t = step(t.tracks, [session('lb-b', false), session('lb-c', true)], GRACE - 1);
    expect(t.transitions).toEqual([]);
    t = step(t.tracks, [session('lb-b', false), session('lb-c', true)], GRACE);
    expect(t.transitions).toEqual([{ kind: 'down', name: 'lb-b', downSince: 0 }]);
    t = step(t.tracks, [session('lb-b', false), session('lb-c', true)], GRACE + 5000);
    expect(t.transitions).toEqual([]);
    // Not listed by HAProxy (unknown): neither up nor down, and the clock keeps running.
    t = step(t.tracks, [session('lb-c', true)], GRACE + 6000);
    expect(t.transitions).toEqual([]);
    expect(t.tracks.get('lb-b')).toEqual({ downSince: 0, reported: true });
    t = step(t.tracks, [session('lb-b', true), session('lb-c', true)], GRACE + 7000);
    expect(t.transitions).toEqual([{ kind: 'up', name: 'lb-b' }]);
    expect(t.tracks.size).toBe(0);
  });

  it('forgets a short gap (a reload) without a report, and a peer that left the config', () => {
    let t = step(new Map(), [session('lb-b', false)], 0);
    t = step(t.tracks, [session('lb-b', true)], 3000);
    expect(t.transitions).toEqual([]);
    t = step(t.tracks, [session('lb-b', false)], 10_000);
    expect(t.tracks.get('lb-b')?.downSince).toBe(10_000);
    t = step(t.tracks, [session('lb-b', false)], 60_000, []);
    expect(t.transitions).toEqual([]);
    expect(t.tracks.size).toBe(0);
  });
});

describe('peersReportOf', () => {
  it('joins the applied peers with the sessions by name: state, HAProxy fields and the warning', () => {
    const tracks = new Map([['lb-b', { downSince: 1000, reported: true }]]);
    const last = { sessions: [session('lb-b', false), session('lb-a', false, { local: true })], at: 40_000, error: null };
    const report = peersReportOf(APPLIED, last, tracks, GRACE);
    expect(report).toEqual({
      local: { name: 'lb-a', address: '10.0.0.1:7946' },
      remotes: [
        {
          name: 'lb-b',
          address: '10.0.0.2:7946',
          state: 'not_established',
          lastStatus: 'CONN',
          lastHandshakeSeconds: 1,
          reconnectSeconds: null,
          newConnections: 1,
          protocolErrors: 0,
          tables: 2,
          notEstablishedSeconds: 39,
          warning: true,
        },
        {
          name: 'lb-c',
          address: '10.0.0.3:7946',
          state: 'unknown',
          lastStatus: null,
          lastHandshakeSeconds: null,
          reconnectSeconds: null,
          newConnections: null,
          protocolErrors: null,
          tables: null,
          notEstablishedSeconds: null,
          warning: false,
        },
      ],
      checkedAt: new Date(40_000).toISOString(),
      error: null,
      warnings: ['peer lb-b (10.0.0.2:7946) not connected for 39 s (HAProxy: last_status=CONN): the rate_limit and conn_limit counters are not shared with it'],
    });
  });

  it('says every peer is unknown while HAProxy cannot be asked', () => {
    const report = peersReportOf(APPLIED, { sessions: [], at: 5, error: 'connect ENOENT' }, new Map(), GRACE);
    expect(report.remotes.map((p) => p.state)).toEqual(['unknown', 'unknown']);
    expect(report.error).toBe('connect ENOENT');
    expect(report.warnings).toEqual([]);
  });
});

/** A monitor on a fake clock and a scripted HAProxy. */
function monitorOf(answers: (() => PeerSession[])[]) {
  let now = 0;
  const { logger, logs } = capturingLogger('info');
  const monitor = new PeerMonitor({
    readSessions: async () => answers.shift()!(),
    applied: () => APPLIED,
    running: () => true,
    logger,
    graceMs: GRACE,
    now: () => now,
  });
  return { monitor, logs, at: (ms: number) => (now = ms) };
}

describe('PeerMonitor', () => {
  it('logs one warning when a peer stays down past the grace period, and one line when it is back', async () => {
    const down = () => [session('lb-b', false), session('lb-c', true)];
    const { monitor, logs, at } = monitorOf([down, down, down, () => [session('lb-b', true), session('lb-c', true)]]);
    for (const ms of [0, 20_000, 35_000, 40_000]) {
      at(ms);
      if (ms === 35_000) expect(monitor.report()?.warnings).toEqual([]);
      await monitor.check();
      if (ms === 35_000) expect(monitor.report()?.remotes[0]).toMatchObject({ state: 'not_established', warning: true, notEstablishedSeconds: 35 });
    }
    expect(logs.filter((l) => String(l.event).startsWith('peers.')).map((l) => [l.event, l.level, l.peer, l.address, l.lastStatus])).toEqual([
      ['peers.session_down', 40, 'lb-b', '10.0.0.2:7946', 'CONN'],
      ['peers.session_up', 30, 'lb-b', '10.0.0.2:7946', 'ESTA'],
    ]);
    expect(monitor.report()?.remotes.map((p) => p.state)).toEqual(['established', 'established']);
  });

  it('treats an unanswered question as unknown, not down', async () => {
    const { monitor, logs, at } = monitorOf([
      () => {
        throw new Error('no socket');
      },
    ]);
    at(60_000);
    await monitor.check();
    expect(logs).toEqual([]);
    expect(monitor.report()).toMatchObject({ error: 'no socket', warnings: [] });
  });
});

describe('the peers in /status, /metrics, the dashboard and edgelb status', () => {
  const report = peersReportOf(
    APPLIED,
    { sessions: [session('lb-b', false), session('lb-c', true)], at: 40_000, error: null },
    new Map([['lb-b', { downSince: 0, reported: true }]]),
    GRACE,
  );
  const inputs = (peers: AdminInputs['peers']): AdminInputs => ({
    version: '1',
    etcdPrefix: '/p',
    controller: {
      status: () => ({
        revision: '1',
        state: { http: [], tcp: [] },
        certs: { all: [], served: [], rejected: [], warnings: [] },
        rejected: [],
        warnings: [],
        excluded: [],
        lastApply: { action: 'reloaded', at: '2026-01-01T00:00:00Z', durationMs: 1, revision: '1', changes: { added: [], removed: [], changed: [] } },
        counters: { applies: 1, reloads: 1, starts: 1, unchanged: 0, failures: 0, runtimeUpdates: 0 },
        certificateWarnings: [],
      }),
    } as never,
    haproxy: { running: true, isStarting: false, pid: 1, restartCount: 0 },
    etcd: { status: () => ({ connected: true, api: 'v3', apiReason: undefined, endpoints: [], failure: undefined }) } as never,
    renderSettings: {} as never,
    serverStats: async () => [],
    ...(peers ? { peers } : {}),
  });

  it('/status has the peers object (null when off) and stays healthy while a peer is down', async () => {
    const status = await buildStatus(inputs({ report: () => report }));
    expect(status.peers).toBe(report);
    expect(status.health).toEqual({ status: 'ok', reason: null });
    expect((await buildStatus(inputs(undefined))).peers).toBeNull();
  });

  it('/metrics has edgelb_peer_up per remote peer', async () => {
    const scrape = parsePrometheusText(await createControllerMetrics(inputs({ report: () => report })).scrape(true));
    expect(samplesOf(scrape, 'edgelb_peer_up').map((s) => [s.labels.peer, s.value])).toEqual([
      ['lb-b', 0],
      ['lb-c', 1],
    ]);
    expect(samplesOf(parsePrometheusText(await createControllerMetrics(inputs(undefined)).scrape(true)), 'edgelb_peer_up')).toEqual([]);
  });

  it('the dashboard and edgelb status show each peer with its state in words', async () => {
    const status = await buildStatus(inputs({ report: () => report }));
    const html = renderSections({ status, applies: [], acme: undefined }).peers;
    expect(html).toContain('lb-a');
    expect(html).toMatch(
      /<th scope="row">lb-b<\/th><td>10\.0\.0\.2:7946<\/td><td><span class="badge bad"[^>]*><span aria-hidden="true">✖ <\/span>not connected for 40 s</,
    );
    expect(html).toMatch(/badge ok[^>]*><span aria-hidden="true">✔ <\/span>established</);
    expect(renderSections({ status: { ...status, peers: null } as StatusReport, applies: [], acme: undefined }).peers).toContain('off');
    const lines = formatStatus(status, 'http://127.0.0.1:8404/status');
    expect(lines).toContain('peers:      this replica lb-a on 10.0.0.1:7946; 1 of 2 other replicas connected');
    expect(lines.find((l) => l.startsWith('lb-b'))).toMatch(/^lb-b\s+10\.0\.0\.2:7946\s+NOT_ESTABLISHED \(warning\)\s+CONN\s+40s$/);
    expect(lines.some((l) => l.startsWith('peer not connected') && l.includes('lb-b'))).toBe(true);
  });
});
