import { Counter, Gauge, Registry } from 'prom-client';
import type { ControllerStatus } from '../controller/controller.js';
import type { ProverCounters } from '../haproxy/server-prover.js';
import { KEY_PATHS, SERVICE_FIELD_KEYS } from '../model/keyspace.js';
import type { Rejection } from '../model/types.js';
import type { EtcdSourceStatus } from '../sources/etcd.js';
import type { PeersReport } from './peer-report.js';
import { healthOf, type AdminInputs } from './status.js';

/** What one scrape reads, once, before any metric is collected: every family sees the same moment. */
interface Scrape {
  readonly inputs: Omit<AdminInputs, 'serverStats'>;
  readonly status: ControllerStatus;
  readonly etcd: EtcdSourceStatus;
  readonly probes: ProverCounters;
  /** KONTENA_LB_PEERS=etcd: the peers' sessions as last seen. */
  readonly peers: PeersReport | undefined;
  /** Whether HAProxy's own exporter answered this scrape (its text follows edgelb's). */
  readonly haproxyMetricsUp: boolean;
}

type Samples = readonly (readonly [Readonly<Record<string, string>>, number])[];

interface Family {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  /** Omitted: one unlabelled sample, or none when `read` gives none (nothing to report yet). */
  readonly labels?: readonly string[];
  readonly read: (scrape: Scrape) => Samples;
}

const one = (value: number): Samples => [[{}, value]];
const counter = (name: string, help: string, key: keyof ControllerStatus['counters']): Family => ({
  name,
  type: 'counter',
  help,
  read: (s) => one(s.status.counters[key]),
});
const lastApply = (name: string, help: string, value: (last: NonNullable<ControllerStatus['lastApply']>) => number): Family => ({
  name,
  type: 'gauge',
  help,
  read: (s) => (s.status.lastApply ? one(value(s.status.lastApply)) : []),
});
const perKind = (s: Scrape, count: (services: readonly { upstreams: readonly unknown[] }[]) => number): Samples => [
  [{ kind: 'http' }, count(s.status.state?.http ?? [])],
  [{ kind: 'tcp' }, count(s.status.state?.tcp ?? [])],
];

/**
 * edgelb's metric families, in the order they are exposed. Names follow the Prometheus
 * conventions: `_total` for counters, base units (seconds), and labels with a bounded set of
 * values (a rejection's reason class, never its text, which holds the offending value).
 */
const FAMILIES: readonly Family[] = [
  { name: 'edgelb_info', type: 'gauge', help: 'edgelb version (always 1).', labels: ['version'], read: (s) => [[{ version: s.inputs.version }, 1]] },
  {
    name: 'edgelb_up',
    type: 'gauge',
    help: '1 while HAProxy serves a validated config (the admin port /healthz answers 200).',
    read: (s) => one(healthOf(s.inputs).status === 'unavailable' ? 0 : 1),
  },
  counter('edgelb_applies_total', 'Configs applied: HAProxy started, reloaded, or updated through the runtime API.', 'applies'),
  counter('edgelb_reloads_total', 'Seamless reloads of HAProxy.', 'reloads'),
  counter('edgelb_starts_total', 'HAProxy starts by the controller (the first apply).', 'starts'),
  counter('edgelb_runtime_updates_total', 'Changes applied through the HAProxy runtime API, without a reload.', 'runtimeUpdates'),
  counter('edgelb_unchanged_total', 'Snapshots that rendered to the config already served (nothing applied).', 'unchanged'),
  counter('edgelb_apply_failures_total', 'Applies that failed; HAProxy kept serving the last good config.', 'failures'),
  {
    name: 'edgelb_first_probes_total',
    type: 'counter',
    labels: ['result'],
    help: "The controller's first health checks of new or moved servers, by result: proven (put in service at once) or gave_up (left to HAProxy's checks).",
    read: (s) => [
      [{ result: 'proven' }, s.probes.proven],
      [{ result: 'gave_up' }, s.probes.gaveUp],
    ],
  },
  {
    name: 'edgelb_first_probes_pending',
    type: 'gauge',
    help: 'Servers waiting for their first health check by the controller.',
    read: (s) => one(s.probes.pending),
  },
  lastApply('edgelb_last_apply_duration_seconds', 'How long the last apply took.', (last) => last.durationMs / 1000),
  lastApply('edgelb_last_apply_timestamp_seconds', 'When the last apply finished (Unix time).', (last) => Date.parse(last.at) / 1000),
  lastApply('edgelb_last_apply_success', '1 when the last apply succeeded, 0 when it failed.', (last) => (last.action === 'failed' ? 0 : 1)),
  { name: 'edgelb_etcd_connected', type: 'gauge', help: '1 while the etcd watch is established.', read: (s) => one(s.etcd.connected ? 1 : 0) },
  {
    name: 'edgelb_etcd_api',
    type: 'gauge',
    labels: ['api'],
    help: "The etcd API the load balancer's keys are read with (1 for the one in use; both while ETCD_API=auto waits for the first write).",
    read: (s) => (s.etcd.api ? [s.etcd.api] : ['v3', 'v2']).map((api) => [{ api }, 1]),
  },
  {
    name: 'edgelb_etcd_failure',
    type: 'gauge',
    labels: ['code'],
    help: '1 while reading etcd keeps failing, by cause (auth, permission and tls need an operator).',
    read: (s) => (s.etcd.failure ? [[{ code: s.etcd.failure.code }, 1]] : []),
  },
  { name: 'edgelb_haproxy_running', type: 'gauge', help: '1 while the HAProxy master runs.', read: (s) => one(s.inputs.haproxy.running ? 1 : 0) },
  {
    name: 'edgelb_haproxy_restarts_total',
    type: 'counter',
    help: 'Times HAProxy died and the supervisor started it again.',
    read: (s) => one(s.inputs.haproxy.restartCount),
  },
  { name: 'edgelb_services', type: 'gauge', help: 'Services served, by kind.', labels: ['kind'], read: (s) => perKind(s, (services) => services.length) },
  {
    name: 'edgelb_upstreams',
    type: 'gauge',
    help: 'Instances (servers) configured, by kind.',
    labels: ['kind'],
    read: (s) => perKind(s, (services) => services.reduce((n, service) => n + service.upstreams.length, 0)),
  },
  {
    name: 'edgelb_rejected_entries',
    type: 'gauge',
    labels: ['reason'],
    help: 'etcd entries left out of the config now, by reason class (the log line "entry rejected" has the key and full reason).',
    read: (s) =>
      [...countBy([...s.status.rejected.map(rejectionReason), ...s.status.excluded.map(() => 'haproxy_rejected')])].map(([reason, n]) => [{ reason }, n]),
  },
  {
    name: 'edgelb_certificates_rejected',
    type: 'gauge',
    help: 'Certificate bundles that cannot be served now (log line "certificate rejected").',
    read: (s) => one(s.status.certs.rejected.length),
  },
  {
    name: 'edgelb_certificate_expiry_timestamp_seconds',
    type: 'gauge',
    labels: ['id', 'source', 'name', 'served'],
    help: 'notAfter of each known certificate (Unix time); subtract time() for the seconds left.',
    read: ({ status: { certs } }) => {
      const served = new Set(certs.served.map((c) => c.bundle.id));
      const bundles = new Map([...certs.all, ...certs.served.map((c) => c.bundle)].map((b) => [b.id, b]));
      return [...bundles.values()].map((b) => [
        { id: b.id, source: b.source.kind, name: b.names[0] ?? '', served: served.has(b.id) ? 'true' : 'false' },
        Math.floor(b.notAfter.getTime() / 1000),
      ]);
    },
  },
  {
    name: 'edgelb_haproxy_metrics_up',
    type: 'gauge',
    help: "1 when the haproxy_* metrics below were read from HAProxy's exporter.",
    read: (s) => one(s.haproxyMetricsUp ? 1 : 0),
  },
  {
    name: 'edgelb_peer_up',
    type: 'gauge',
    labels: ['peer'],
    help: "KONTENA_LB_PEERS=etcd: 1 while HAProxy's session with the other replica is established, 0 while not (no sample while HAProxy cannot be asked).",
    read: (s) => (s.peers?.remotes ?? []).filter((p) => p.state !== 'unknown').map((p) => [{ peer: p.name }, p.state === 'established' ? 1 : 0]),
  },
];

export interface ControllerMetrics {
  /** The exposition format's content type (Prometheus text 0.0.4). */
  readonly contentType: string;
  /** edgelb's metrics as read now; `haproxyMetricsUp` says whether HAProxy's exporter answered. */
  scrape(haproxyMetricsUp: boolean): Promise<string>;
}

/**
 * edgelb's metrics on prom-client, in a registry of their own (never prom-client's global one:
 * one process may run several admin servers). Nothing is counted here: every value is read from
 * the controller, the etcd source, the prover and the supervisor when Prometheus scrapes.
 */
export function createControllerMetrics(inputs: Omit<AdminInputs, 'serverStats'>): ControllerMetrics {
  const registry = new Registry();
  let current: Scrape | undefined;
  // One scrape at a time: the families read `current`, which belongs to the scrape under way.
  let queue: Promise<unknown> = Promise.resolve();
  for (const family of FAMILIES) register(registry, family, () => current!);
  return {
    contentType: registry.contentType,
    scrape(haproxyMetricsUp) {
      const text = queue.then(async () => {
        current = {
          inputs,
          status: inputs.controller.status(),
          etcd: inputs.etcd.status(),
          probes: inputs.probes?.counters() ?? { proven: 0, gaveUp: 0, pending: 0 },
          peers: inputs.peers?.report(),
          haproxyMetricsUp,
        };
        try {
          return await registry.metrics();
        } finally {
          current = undefined;
        }
      });
      queue = text.catch(() => undefined);
      return text;
    },
  };
}

function register(registry: Registry, family: Family, scrape: () => Scrape): void {
  const config = { name: family.name, help: family.help, labelNames: family.labels ?? [], registers: [registry] };
  const samples = () => family.read(scrape());
  if (family.type === 'counter') {
    new Counter({
      ...config,
      collect() {
        this.reset();
        for (const [labels, value] of samples()) this.inc(labels, value);
      },
    });
    return;
  }
  new Gauge({
    ...config,
    collect() {
      this.reset();
      const values = samples();
      // An unlabelled gauge starts at 0 after reset(); "not known yet" must expose no sample at all.
      if (values.length === 0 && !family.labels) this.remove({});
      for (const [labels, value] of values) this.set(labels, value);
    },
  });
}

/**
 * A bounded class for a rejection: its code, and for a bad value which setting it was
 * (`invalid_virtual_hosts`, `invalid_upstream`). The reason text itself holds the bad value, so as
 * a label it would be unbounded and could leak what an entry contains.
 */
export function rejectionReason(rejection: Rejection): string {
  if (rejection.code !== 'invalid_value') return rejection.code;
  const parts = rejection.key.split('/');
  if (parts[2] === 'upstreams') return 'invalid_upstream';
  if (parts[2] === KEY_PATHS.weights) return 'invalid_weight';
  const field = parts[2] ?? '';
  return SERVICE_FIELD_KEYS.has(field) ? `invalid_${field}` : 'other';
}

function countBy(values: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of [...values].sort()) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}
