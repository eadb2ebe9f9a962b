import type { ControllerStatus } from '../controller.js';
import { SERVICE_FIELD_KEYS } from '../model/keyspace.js';
import type { Rejection } from '../model/types.js';
import { healthOf, type AdminInputs } from './status.js';

/**
 * The controller's metrics in the Prometheus text format (version 0.0.4). Names follow the
 * Prometheus conventions: `_total` for counters, base units (seconds), and labels with a bounded
 * set of values (a rejection's reason class, never its text, which holds the offending value).
 */
export function renderControllerMetrics(inputs: Omit<AdminInputs, 'serverStats'>): string {
  const status = inputs.controller.status();
  const out: string[] = [];
  const family = (name: string, type: 'counter' | 'gauge', help: string, samples: readonly [Record<string, string>, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) out.push(`${name}${labelText(labels)} ${formatValue(value)}`);
  };
  const counter = (name: string, help: string, key: keyof ControllerStatus['counters']) =>
    family(name, 'counter', help, [[{}, status.counters[key]]]);

  family('edgelb_info', 'gauge', 'edgelb version (always 1).', [[{ version: inputs.version }, 1]]);
  family('edgelb_up', 'gauge', '1 while HAProxy serves a validated config (the admin port /healthz answers 200).', [[{}, healthOf(inputs).status === 'unavailable' ? 0 : 1]]);
  counter('edgelb_applies_total', 'Configs applied: HAProxy started, reloaded, or updated through the runtime API.', 'applies');
  counter('edgelb_reloads_total', 'Seamless reloads of HAProxy.', 'reloads');
  counter('edgelb_starts_total', 'HAProxy starts by the controller (the first apply).', 'starts');
  counter('edgelb_runtime_updates_total', 'Changes applied through the HAProxy runtime API, without a reload.', 'runtimeUpdates');
  counter('edgelb_unchanged_total', 'Snapshots that rendered to the config already served (nothing applied).', 'unchanged');
  counter('edgelb_apply_failures_total', 'Applies that failed; HAProxy kept serving the last good config.', 'failures');
  const probes = inputs.probes?.counters() ?? { proven: 0, gaveUp: 0, pending: 0 };
  family('edgelb_first_probes_total', 'counter', 'The controller\'s first health checks of new or moved servers, by result: proven (put in service at once) or gave_up (left to HAProxy\'s checks).',
    [[{ result: 'proven' }, probes.proven], [{ result: 'gave_up' }, probes.gaveUp]]);
  family('edgelb_first_probes_pending', 'gauge', 'Servers waiting for their first health check by the controller.', [[{}, probes.pending]]);
  const last = status.lastApply;
  family('edgelb_last_apply_duration_seconds', 'gauge', 'How long the last apply took.', last ? [[{}, last.durationMs / 1000]] : []);
  family('edgelb_last_apply_timestamp_seconds', 'gauge', 'When the last apply finished (Unix time).', last ? [[{}, Date.parse(last.at) / 1000]] : []);
  family('edgelb_last_apply_success', 'gauge', '1 when the last apply succeeded, 0 when it failed.', last ? [[{}, last.action === 'failed' ? 0 : 1]] : []);
  const etcd = inputs.etcd.status();
  family('edgelb_etcd_connected', 'gauge', '1 while the etcd watch is established.', [[{}, etcd.connected ? 1 : 0]]);
  family('edgelb_etcd_api', 'gauge', 'The etcd API the load balancer\'s keys are read with (1 for the one in use; both while ETCD_API=auto waits for the first write).',
    (etcd.api ? [etcd.api] : ['v3', 'v2']).map((api) => [{ api }, 1]));
  family('edgelb_etcd_failure', 'gauge', '1 while reading etcd keeps failing, by cause (auth, permission and tls need an operator).',
    etcd.failure ? [[{ code: etcd.failure.code }, 1]] : []);
  family('edgelb_haproxy_running', 'gauge', '1 while the HAProxy master runs.', [[{}, inputs.haproxy.running ? 1 : 0]]);
  family('edgelb_haproxy_restarts_total', 'counter', 'Times HAProxy died and the supervisor started it again.', [[{}, inputs.haproxy.restartCount]]);
  const state = status.state;
  family('edgelb_services', 'gauge', 'Services served, by kind.', [[{ kind: 'http' }, state?.http.length ?? 0], [{ kind: 'tcp' }, state?.tcp.length ?? 0]]);
  family('edgelb_upstreams', 'gauge', 'Instances (servers) configured, by kind.', [
    [{ kind: 'http' }, state?.http.reduce((n, s) => n + s.upstreams.length, 0) ?? 0],
    [{ kind: 'tcp' }, state?.tcp.reduce((n, s) => n + s.upstreams.length, 0) ?? 0],
  ]);
  const reasons = countBy([
    ...status.rejected.map(rejectionReason),
    ...status.excluded.map(() => 'haproxy_rejected'),
  ]);
  family('edgelb_rejected_entries', 'gauge', 'etcd entries left out of the config now, by reason class (the log line "entry rejected" has the key and full reason).',
    [...reasons].map(([reason, n]) => [{ reason }, n]));
  family('edgelb_certificates_rejected', 'gauge', 'Certificate bundles that cannot be served now (log line "certificate rejected").', [[{}, status.certs.rejected.length]]);
  const served = new Set(status.certs.served.map((c) => c.bundle.id));
  const bundles = new Map([...status.certs.all, ...status.certs.served.map((c) => c.bundle)].map((b) => [b.id, b]));
  family('edgelb_certificate_expiry_timestamp_seconds', 'gauge', 'notAfter of each known certificate (Unix time); subtract time() for the seconds left.',
    [...bundles.values()].map((b) => [{ id: b.id, source: b.source.kind, name: b.names[0] ?? '', served: served.has(b.id) ? 'true' : 'false' }, Math.floor(b.notAfter.getTime() / 1000)]));
  return `${out.join('\n')}\n`;
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
  const field = parts[2] ?? '';
  return SERVICE_FIELD_KEYS.has(field) ? `invalid_${field}` : 'other';
}

function countBy(values: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of [...values].sort()) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

function labelText(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`).join(',')}}`;
}

function formatValue(value: number): string {
  return Number.isFinite(value) ? String(value) : value > 0 ? '+Inf' : value < 0 ? '-Inf' : 'NaN';
}
