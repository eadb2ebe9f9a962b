import type { CertWarning } from '../tls/cert-warnings.js';
import type { ProverCounters } from '../haproxy/server-prover.js';
import { CLOSED_CONN_LIMIT, type RateLimit } from '../model/limits.js';
import { settingsReportOf } from './service-settings.js';
import type { ApplyRecord, ControllerStatus } from '../controller/controller.js';
import { FAILURE_HINTS, isConfigurationFailure } from '../etcd/errors.js';
import type { EtcdSourceStatus } from '../sources/etcd.js';
import type { EntryWarning, Rejection } from '../model/types.js';
import type { RenderSettings } from '../render/render-settings.js';
import { buildHeadView, httpBackendName, tcpProxyName } from '../render/view.js';
import type { ServerStat } from './haproxy-stats.js';
import type { PeersReport } from './peer-report.js';

/** What the admin port reads; each part is owned elsewhere and only read here. */
export interface AdminInputs {
  readonly version: string;
  readonly etcdPrefix: string;
  readonly controller: { status(): ControllerStatus };
  /** `isStarting`: a master is spawned but has no worker yet, so nothing listens on the ports. */
  readonly haproxy: { readonly running: boolean; readonly isStarting: boolean; readonly pid: number | undefined; readonly restartCount: number };
  readonly etcd: { status(): EtcdSourceStatus };
  /** For the route order: the same view the template is rendered from. */
  readonly renderSettings: RenderSettings;
  /** Per-server health from HAProxy's runtime API; rejects when HAProxy cannot be asked. */
  readonly serverStats: () => Promise<ServerStat[]>;
  /** The controller's first health checks of new servers. */
  readonly probes?: { counters(): ProverCounters };
  /** KONTENA_LB_PEERS=etcd: the peers and their sessions (peer-monitor.ts). */
  readonly peers?: { report(): PeersReport | undefined };
  readonly now?: () => Date;
}

export interface InstanceReport {
  readonly name: string;
  readonly address: string;
  /** From HAProxy's health checks: up, down, maint, drain, nolb, unchecked; unknown when HAProxy cannot be asked. */
  readonly health: string;
  readonly check: string | null;
  readonly lastChangeSeconds: number | null;
  readonly currentSessions: number | null;
  /** Sessions per second over the last second, from HAProxy. */
  readonly sessionRate: number | null;
  /** weights/<instance>: the weight edgelb gives it (HAProxy's own is in its stats). */
  readonly weight: number;
}

export interface ServiceReport {
  readonly kind: 'http' | 'tcp';
  readonly name: string;
  readonly hosts: readonly string[];
  readonly paths: readonly string[];
  readonly port: number | null;
  /** rate_limit and conn_limit (issue 15); null: neither. */
  readonly limits: LimitsReport | null;
  /** Every per-service key set to other than its default, by etcd key (service-settings.ts). */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly instances: readonly InstanceReport[];
}

/** A service's per-client limits; `closed`: its conn_limit was invalid, so it refuses everyone. */
export interface LimitsReport {
  readonly rate: RateLimit | null;
  readonly connections: number | null;
  readonly closed: boolean;
}

function limitsReportOf(rate: RateLimit | undefined, connections: number | undefined): LimitsReport | null {
  if (rate === undefined && connections === undefined) return null;
  const closed = connections === CLOSED_CONN_LIMIT;
  return { rate: rate ?? null, connections: closed ? null : (connections ?? null), closed };
}

export interface RouteReport {
  /** 1-based: HAProxy takes the first route that matches. */
  readonly order: number;
  readonly service: string;
  readonly hosts: readonly string[];
  readonly path: string | null;
}

export interface CertificateReport {
  readonly id: string;
  readonly source: string;
  readonly names: readonly string[];
  readonly notAfter: string;
  readonly daysLeft: number;
  readonly served: boolean;
  readonly default: boolean;
  readonly expired: boolean;
}

export interface StatusReport {
  readonly version: string;
  readonly time: string;
  readonly health: HealthReport;
  readonly haproxy: { readonly running: boolean; readonly pid: number | null; readonly restarts: number; readonly statsError: string | null };
  readonly etcd: EtcdReport;
  readonly lastApply: ApplyRecord | null;
  readonly counters: ControllerStatus['counters'];
  /** First health checks by the controller: servers proven (in service), given up (left to HAProxy's checks), pending. */
  readonly probes: ProverCounters;
  readonly services: readonly ServiceReport[];
  readonly routes: readonly RouteReport[];
  readonly certificates: readonly CertificateReport[];
  readonly rejected: readonly Rejection[];
  /** Entries served as written, with a cost to know about (e.g. bcrypt basic-auth hashes). */
  readonly warnings: readonly EntryWarning[];
  readonly excluded: readonly { service: string; reason: string }[];
  readonly certificatesRejected: readonly { source: string; reason: string }[];
  /** The certificate selection's own warnings (a KONTENA_LB_DEFAULT_CERT that matches nothing, an expired certificate served). */
  readonly certificateSelectionWarnings: readonly string[];
  /** Issue 16: certificates expiring, ACME renewal failing for over a day, hosts only the default certificate serves. */
  readonly certificateWarnings: readonly CertWarning[];
  /** KONTENA_LB_PEERS=etcd: this replica and the others it shares counters with, with their sessions; null: off. */
  readonly peers: PeersReport | null;
}

export interface EtcdReport {
  readonly connected: boolean;
  readonly prefix: string;
  readonly revision: string | null;
  /** v3 or v2; null while ETCD_API=auto watches both keyspaces. */
  readonly api: string | null;
  readonly apiReason: string | null;
  readonly endpoints: readonly string[];
  /** While reading or watching keeps failing: a stable code and one line (never a secret). */
  readonly error: { readonly code: string; readonly message: string } | null;
}

export interface HealthReport {
  /** ok: serving the latest entries; degraded: serving, but the last apply failed; unavailable: not serving. */
  readonly status: 'ok' | 'degraded' | 'unavailable';
  readonly reason: string | null;
}

/**
 * Healthy means HAProxy serves a validated config: the latest one, or the last good one after a
 * failed apply (then "degraded", still 200: restarting the load balancer would not fix an entry).
 */
export function healthOf(inputs: Pick<AdminInputs, 'controller' | 'haproxy' | 'etcd'>): HealthReport {
  const last = inputs.controller.status().lastApply;
  // Refused credentials or certificates will not fix themselves: an operator must act, so the
  // probe fails (HAProxy keeps serving what it has meanwhile).
  const etcdFailure = inputs.etcd.status().failure;
  if (etcdFailure && isConfigurationFailure(etcdFailure)) {
    return { status: 'unavailable', reason: `${FAILURE_HINTS[etcdFailure.code]}: ${etcdFailure.message}` };
  }
  if (!inputs.haproxy.running) {
    const why = last?.action === 'failed' ? `the last apply failed: ${last.error ?? 'unknown error'}` : 'no config applied yet';
    return { status: 'unavailable', reason: `HAProxy is not running (${why})` };
  }
  // A spawned master serves nothing until it reports a worker (found by scripts/image-test.sh: a
  // probe got 200 while the ports were still closed).
  if (inputs.haproxy.isStarting) return { status: 'unavailable', reason: 'HAProxy is starting: no worker serves the ports yet' };
  if (last?.action === 'failed') {
    return { status: 'degraded', reason: `the last apply failed, HAProxy serves the last good config: ${last.error ?? 'unknown error'}` };
  }
  return { status: 'ok', reason: null };
}

export async function buildStatus(inputs: AdminInputs): Promise<StatusReport> {
  const now = inputs.now?.() ?? new Date();
  const status = inputs.controller.status();
  let stats: ServerStat[] = [];
  let statsError: string | null = null;
  if (inputs.haproxy.running) {
    try {
      stats = await inputs.serverStats();
    } catch (error) {
      statsError = (error as Error).message;
    }
  } else {
    statsError = 'HAProxy is not running';
  }
  const byServer = new Map(stats.map((s) => [`${s.proxy}/${s.server}`, s]));
  const instance =
    (proxy: string) =>
    (u: { name: string; host: string; port: number; weight: number }): InstanceReport => {
      const stat = byServer.get(`${proxy}/${u.name}`);
      return {
        name: u.name,
        address: u.host.includes(':') ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`,
        health: stat?.health ?? 'unknown',
        check: stat?.check || null,
        lastChangeSeconds: stat?.lastChangeSeconds ?? null,
        currentSessions: stat?.currentSessions ?? null,
        sessionRate: stat?.sessionRate ?? null,
        weight: u.weight,
      };
    };
  const state = status.state ?? { http: [], tcp: [] };
  const services: ServiceReport[] = [
    ...state.http.map(
      (s): ServiceReport => ({
        kind: 'http',
        name: s.name,
        hosts: s.virtualHosts.map((h) => (h.wildcard ? `*.${h.name}` : h.name)),
        paths: s.virtualPaths,
        port: null,
        limits: limitsReportOf(s.rateLimit, s.connLimit),
        settings: settingsReportOf(s),
        instances: s.upstreams.map(instance(httpBackendName(s.name))),
      }),
    ),
    ...state.tcp.map(
      (s): ServiceReport => ({
        kind: 'tcp',
        name: s.name,
        hosts: [],
        paths: [],
        port: s.externalPort,
        limits: limitsReportOf(undefined, s.connLimit),
        settings: settingsReportOf(s),
        instances: s.upstreams.map(instance(tcpProxyName(s.name))),
      }),
    ),
  ];
  const defaultId = status.certs.served[0]?.bundle.id;
  const served = new Map(status.certs.served.map((c) => [c.bundle.id, c]));
  const bundles = [...status.certs.all, ...status.certs.served.map((c) => c.bundle).filter((b) => !status.certs.all.some((a) => a.id === b.id))];
  return {
    version: inputs.version,
    time: now.toISOString(),
    health: healthOf(inputs),
    haproxy: { running: inputs.haproxy.running, pid: inputs.haproxy.pid ?? null, restarts: inputs.haproxy.restartCount, statsError },
    etcd: etcdReport(inputs, status.revision ?? null),
    lastApply: status.lastApply ?? null,
    counters: status.counters,
    probes: inputs.probes?.counters() ?? { proven: 0, gaveUp: 0, pending: 0 },
    services,
    routes: routesOf(status, inputs.renderSettings),
    certificates: bundles.map((b) => ({
      id: b.id,
      source: `${b.source.kind}:${b.source.ref}`,
      names: b.names,
      notAfter: b.notAfter.toISOString(),
      daysLeft: Math.floor((b.notAfter.getTime() - now.getTime()) / 86_400_000),
      served: served.has(b.id),
      default: b.id === defaultId,
      expired: b.notAfter.getTime() <= now.getTime(),
    })),
    rejected: status.rejected,
    warnings: status.warnings,
    excluded: status.excluded,
    certificatesRejected: status.certs.rejected,
    certificateSelectionWarnings: status.certs.warnings,
    certificateWarnings: status.certificateWarnings,
    peers: inputs.peers?.report() ?? null,
  };
}

function etcdReport(inputs: AdminInputs, revision: string | null): EtcdReport {
  const etcd = inputs.etcd.status();
  return {
    connected: etcd.connected,
    prefix: inputs.etcdPrefix,
    revision,
    api: etcd.api ?? null,
    apiReason: etcd.apiReason ?? null,
    endpoints: etcd.endpoints,
    error: etcd.failure ? { code: etcd.failure.code, message: etcd.failure.message } : null,
  };
}

/** The HTTP routes in the order HAProxy tries them, from the same view the template renders. */
function routesOf(status: ControllerStatus, settings: RenderSettings): RouteReport[] {
  if (!status.state) return [];
  const view = buildHeadView(status.state, settings);
  const acls = new Map(view.acls.map((a) => [a.name, a]));
  return view.rules.map((rule, index) => {
    const hosts: string[] = [];
    let path: string | null = null;
    for (const name of rule.conditions) {
      const acl = acls.get(name);
      hosts.push(...(acl?.exactHosts ?? []), ...(acl?.hostSuffixes ?? []).map((s) => `*${s}`));
      if (acl?.pathRoot) path = '/';
      if (acl?.path) path = acl.path;
    }
    return { order: index + 1, service: rule.backend.replace(/^http-/, ''), hosts, path };
  });
}
