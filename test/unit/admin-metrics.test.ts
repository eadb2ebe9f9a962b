import { describe, expect, it } from 'vitest';
import { createControllerMetrics } from '../../src/admin/metrics.js';
import type { AdminInputs } from '../../src/admin/status.js';
import { parsePrometheusText, samplesOf, sampleValue } from '../support/prometheus.js';

// edgelb's own /metrics families on prom-client: names, types, labels and values as read from the
// controller, the etcd source and the prover at scrape time.

interface Fake {
  lastApply?: boolean;
  api?: 'v3';
  running?: boolean;
  applies?: number;
}

function fakeInputs(fake: Fake = {}): Omit<AdminInputs, 'serverStats'> {
  const bundle = (id: string, kind: string, names: string[], notAfter: string) => ({ id, source: { kind, ref: 'x' }, names, notAfter: new Date(notAfter) });
  return {
    version: '1.2.3',
    etcdPrefix: '/p',
    controller: {
      status: () => ({
        revision: '5',
        state: {
          http: [
            { name: 'a', upstreams: [1, 2] },
            { name: 'b', upstreams: [1] },
          ],
          tcp: [{ name: 't', upstreams: [1] }],
        },
        certs: {
          all: [bundle('c1', 'env', ['a.example.com'], '2030-01-01T00:00:00.500Z')],
          served: [{ bundle: bundle('c2', 'vault', ['b"x'], '2031-01-01T00:00:00Z') }],
          rejected: [{ source: 's', reason: 'r' }],
          warnings: [],
        },
        rejected: [
          { key: 'services/x/virtual_hosts', code: 'invalid_value', reason: 'not a host!' },
          { key: 'services/x/upstreams/u', code: 'invalid_value', reason: 'bad' },
          { key: 'services/y/upstreams/u', code: 'invalid_value', reason: 'bad' },
          { key: 'services/y/zzz', code: 'invalid_value', reason: 'bad' },
          { key: 'services/q', code: 'duplicate_port', reason: 'bad' },
        ],
        warnings: [],
        excluded: [{ service: 'e', reason: 'r' }],
        lastApply: fake.lastApply === false ? undefined : { action: 'reloaded', at: '2026-01-01T00:00:00.250Z', durationMs: 1234 },
        counters: { applies: fake.applies ?? 7, reloads: 3, starts: 1, unchanged: 2, failures: 0, runtimeUpdates: 4 },
        certificateWarnings: [],
      }),
    } as never,
    haproxy: { running: fake.running ?? true, isStarting: false, pid: 9, restartCount: 2 },
    etcd: {
      status: () => ({ connected: true, api: fake.api, apiReason: undefined, endpoints: [], failure: fake.api ? undefined : { code: 'auth', message: 'm' } }),
    } as never,
    renderSettings: {} as never,
    probes: { counters: () => ({ proven: 5, gaveUp: 1, pending: 2 }) },
  };
}

describe('controller metrics', () => {
  it('exposes every family with its type, labels and the values read at scrape time', async () => {
    const metrics = createControllerMetrics(fakeInputs({ api: 'v3' }));
    expect(metrics.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await metrics.scrape(true);
    const scrape = parsePrometheusText(text);
    expect([...scrape.types]).toEqual([
      ['edgelb_info', 'gauge'],
      ['edgelb_up', 'gauge'],
      ['edgelb_applies_total', 'counter'],
      ['edgelb_reloads_total', 'counter'],
      ['edgelb_starts_total', 'counter'],
      ['edgelb_runtime_updates_total', 'counter'],
      ['edgelb_unchanged_total', 'counter'],
      ['edgelb_apply_failures_total', 'counter'],
      ['edgelb_first_probes_total', 'counter'],
      ['edgelb_first_probes_pending', 'gauge'],
      ['edgelb_last_apply_duration_seconds', 'gauge'],
      ['edgelb_last_apply_timestamp_seconds', 'gauge'],
      ['edgelb_last_apply_success', 'gauge'],
      ['edgelb_etcd_connected', 'gauge'],
      ['edgelb_etcd_api', 'gauge'],
      ['edgelb_etcd_failure', 'gauge'],
      ['edgelb_haproxy_running', 'gauge'],
      ['edgelb_haproxy_restarts_total', 'counter'],
      ['edgelb_services', 'gauge'],
      ['edgelb_upstreams', 'gauge'],
      ['edgelb_rejected_entries', 'gauge'],
      ['edgelb_certificates_rejected', 'gauge'],
      ['edgelb_certificate_expiry_timestamp_seconds', 'gauge'],
      ['edgelb_haproxy_metrics_up', 'gauge'],
      ['edgelb_peer_up', 'gauge'],
    ]);
    expect(text).toContain('# HELP edgelb_applies_total Configs applied: HAProxy started, reloaded, or updated through the runtime API.\n');
    expect(sampleValue(scrape, 'edgelb_info', { version: '1.2.3' })).toBe(1);
    expect(sampleValue(scrape, 'edgelb_up')).toBe(1);
    expect(sampleValue(scrape, 'edgelb_applies_total')).toBe(7);
    expect(sampleValue(scrape, 'edgelb_runtime_updates_total')).toBe(4);
    expect(sampleValue(scrape, 'edgelb_apply_failures_total')).toBe(0);
    expect(samplesOf(scrape, 'edgelb_first_probes_total').map((s) => [s.labels.result, s.value])).toEqual([
      ['proven', 5],
      ['gave_up', 1],
    ]);
    expect(sampleValue(scrape, 'edgelb_first_probes_pending')).toBe(2);
    expect(sampleValue(scrape, 'edgelb_last_apply_duration_seconds')).toBe(1.234);
    expect(sampleValue(scrape, 'edgelb_last_apply_timestamp_seconds')).toBe(1767225600.25);
    expect(sampleValue(scrape, 'edgelb_last_apply_success')).toBe(1);
    expect(samplesOf(scrape, 'edgelb_etcd_api')).toEqual([{ name: 'edgelb_etcd_api', labels: { api: 'v3' }, value: 1 }]);
    expect(samplesOf(scrape, 'edgelb_etcd_failure')).toEqual([]);
    expect(sampleValue(scrape, 'edgelb_haproxy_restarts_total')).toBe(2);
    expect(samplesOf(scrape, 'edgelb_services').map((s) => [s.labels.kind, s.value])).toEqual([
      ['http', 2],
      ['tcp', 1],
    ]);
    expect(samplesOf(scrape, 'edgelb_upstreams').map((s) => [s.labels.kind, s.value])).toEqual([
      ['http', 3],
      ['tcp', 1],
    ]);
    expect(samplesOf(scrape, 'edgelb_rejected_entries').map((s) => [s.labels.reason, s.value])).toEqual([
      ['duplicate_port', 1],
      ['haproxy_rejected', 1],
      ['invalid_upstream', 2],
      ['invalid_virtual_hosts', 1],
      ['other', 1],
    ]);
    expect(text).not.toContain('not a host');
    expect(sampleValue(scrape, 'edgelb_certificates_rejected')).toBe(1);
    expect(samplesOf(scrape, 'edgelb_certificate_expiry_timestamp_seconds')).toEqual([
      { name: 'edgelb_certificate_expiry_timestamp_seconds', labels: { id: 'c1', source: 'env', name: 'a.example.com', served: 'false' }, value: 1893456000 },
      { name: 'edgelb_certificate_expiry_timestamp_seconds', labels: { id: 'c2', source: 'vault', name: 'b"x', served: 'true' }, value: 1924992000 },
    ]);
    expect(sampleValue(scrape, 'edgelb_haproxy_metrics_up')).toBe(1);
  });

  it('has no last-apply samples before the first apply, and reports both APIs and the etcd failure while undecided', async () => {
    const scrape = parsePrometheusText(await createControllerMetrics(fakeInputs({ lastApply: false, running: false })).scrape(false));
    expect(sampleValue(scrape, 'edgelb_up')).toBe(0);
    expect(sampleValue(scrape, 'edgelb_haproxy_running')).toBe(0);
    for (const name of ['edgelb_last_apply_duration_seconds', 'edgelb_last_apply_timestamp_seconds', 'edgelb_last_apply_success']) {
      expect(scrape.types.get(name)).toBe('gauge');
      expect(samplesOf(scrape, name)).toEqual([]);
    }
    expect(samplesOf(scrape, 'edgelb_etcd_api').map((s) => s.labels.api)).toEqual(['v3', 'v2']);
    expect(sampleValue(scrape, 'edgelb_etcd_failure', { code: 'auth' })).toBe(1);
    expect(sampleValue(scrape, 'edgelb_haproxy_metrics_up')).toBe(0);
  });

  it('keeps the metrics of two admin servers in one process apart, and reads the values anew on every scrape', async () => {
    let applies = 1;
    const inputs = fakeInputs();
    const moving = {
      ...inputs,
      controller: { status: () => ({ ...inputs.controller.status(), counters: { ...inputs.controller.status().counters, applies } }) },
    };
    const first = createControllerMetrics(moving);
    const second = createControllerMetrics(fakeInputs({ applies: 40 }));
    const [a, b] = await Promise.all([first.scrape(true), second.scrape(false)]);
    expect(sampleValue(parsePrometheusText(a), 'edgelb_applies_total')).toBe(1);
    expect(sampleValue(parsePrometheusText(a), 'edgelb_haproxy_metrics_up')).toBe(1);
    expect(sampleValue(parsePrometheusText(b), 'edgelb_applies_total')).toBe(40);
    expect(sampleValue(parsePrometheusText(b), 'edgelb_haproxy_metrics_up')).toBe(0);
    applies = 2;
    const [c, d] = await Promise.all([first.scrape(false), first.scrape(true)]);
    expect(sampleValue(parsePrometheusText(c), 'edgelb_applies_total')).toBe(2);
    expect(sampleValue(parsePrometheusText(c), 'edgelb_haproxy_metrics_up')).toBe(0);
    expect(sampleValue(parsePrometheusText(d), 'edgelb_haproxy_metrics_up')).toBe(1);
  });
});
