import type { AcmeStatus } from '../../acme/manager.js';
import type { ApplyRecord } from '../../controller/controller.js';
import type { PeersReport } from '../peer-report.js';
import type { InstanceReport, ServiceReport, StatusReport } from '../status.js';
import { ago, badge, esc, list, table, type Tone } from './html.js';

/** What one render of the dashboard shows: /status's report plus what only the dashboard keeps. */
export interface DashboardData {
  readonly status: StatusReport;
  readonly applies: readonly ApplyRecord[];
  readonly acme: AcmeStatus | undefined;
}

/** The page's parts by element id: rendered whole on the server, replaced one by one live. */
export const SECTION_IDS = ['overview', 'services', 'routes', 'instances', 'applies', 'rejected', 'certificates', 'etcd', 'peers', 'acme'] as const;
export type SectionId = (typeof SECTION_IDS)[number];

export function renderSections(data: DashboardData): Record<SectionId, string> {
  const { status } = data;
  return {
    overview: overview(status),
    services: table(
      'Services and their routes',
      ['Service', 'Kind', 'Hosts', 'Paths', 'TCP port', 'Instances up'],
      status.services.map(serviceRow),
      'No services yet.',
    ),
    routes: table(
      'HTTP routes in the order HAProxy tries them: the first that matches wins',
      ['Order', 'Hosts', 'Path', 'Service'],
      status.routes.map((r) => [esc(r.order), list(r.hosts), esc(r.path ?? 'any'), esc(r.service)]),
      'No HTTP routes.',
    ),
    instances: table(
      'Instances, with health as HAProxy checks it',
      ['Instance', 'Service', 'Address', 'Health', 'Last check', 'Since', 'Sessions', 'Sessions/s'],
      status.services.flatMap((s) => s.instances.map((i) => instanceRow(s, i))),
      'No instances yet.',
    ),
    applies: applies(data.applies, status),
    rejected: rejected(status),
    certificates:
      certificateWarnings(status) +
      table(
        'Certificates',
        ['Names', 'Source', 'Expires', 'Days left', 'Served'],
        status.certificates.map((c) => [
          list(c.names),
          esc(c.source),
          esc(c.notAfter.slice(0, 10)),
          badge(c.expired ? 'expired' : `${c.daysLeft} days`, c.expired || c.daysLeft < 7 ? 'bad' : c.daysLeft < 21 ? 'warn' : 'ok'),
          esc(c.served ? (c.default ? 'yes (default)' : 'yes') : 'no'),
        ]),
        'No certificates.',
      ),
    etcd: etcd(status),
    peers: peers(status.peers),
    acme: acme(data.acme),
  };
}

function overview(status: StatusReport): string {
  const health = status.health;
  const tone: Tone = health.status === 'ok' ? 'ok' : health.status === 'degraded' ? 'warn' : 'bad';
  const haproxy = status.haproxy;
  const counters = status.counters;
  return `<dl class="facts">
<div><dt>Health</dt><dd>${badge(health.status, tone)}${health.reason ? ` <span class="reason">${esc(health.reason)}</span>` : ''}</dd></div>
<div><dt>HAProxy</dt><dd>${badge(haproxy.running ? 'running' : 'not running', haproxy.running ? 'ok' : 'bad')} pid ${esc(haproxy.pid ?? '—')}, ${esc(haproxy.restarts)} restarts${haproxy.statsError ? `; health unknown: ${esc(haproxy.statsError)}` : ''}</dd></div>
<div><dt>Applies</dt><dd>${esc(counters.applies)} (${esc(counters.runtimeUpdates)} at runtime, ${esc(counters.reloads)} reloads, ${esc(counters.failures)} failed)</dd></div>
<div><dt>edgelb</dt><dd>${esc(status.version)}, updated <time datetime="${esc(status.time)}">${esc(status.time.slice(11, 19))} UTC</time></dd></div>
</dl>`;
}

function serviceRow(s: ServiceReport): string[] {
  const up = s.instances.filter((i) => i.health === 'up').length;
  const tone: Tone = s.instances.length === 0 || up === 0 ? 'bad' : up < s.instances.length ? 'warn' : 'ok';
  return [esc(s.name), esc(s.kind.toUpperCase()), list(s.hosts), list(s.paths), esc(s.port ?? '—'), badge(`${up} of ${s.instances.length}`, tone)];
}

/** HAProxy's words (management guide 9.3, `status`); only `up` takes traffic as intended. */
function healthTone(health: string): Tone {
  if (health === 'up') return 'ok';
  if (health === 'down') return 'bad';
  if (health === 'maint' || health === 'drain' || health === 'nolb') return 'warn';
  return 'neutral';
}

function instanceRow(s: ServiceReport, i: InstanceReport): string[] {
  return [
    esc(i.name),
    esc(s.name),
    esc(i.address),
    badge(i.health, healthTone(i.health)),
    esc(i.check ?? '—'),
    ago(i.lastChangeSeconds),
    esc(i.currentSessions ?? '—'),
    esc(i.sessionRate ?? '—'),
  ];
}

const HOW: Readonly<Record<string, string>> = { runtime: 'runtime API', reloaded: 'reload', started: 'start', failed: 'failed' };

function applies(records: readonly ApplyRecord[], status: StatusReport): string {
  const longest = Math.max(1, ...records.map((r) => r.durationMs));
  const rows = records.map((r) => {
    const changed = [...r.changes.added.map((n) => `+${n}`), ...r.changes.removed.map((n) => `−${n}`), ...r.changes.changed.map((n) => `~${n}`)];
    // The bar is a picture of the duration column beside it, so it is hidden from screen readers.
    const bar = `<span class="bar" aria-hidden="true"><span data-width="${Math.max(2, Math.round((100 * r.durationMs) / longest))}"></span></span>`;
    return [
      `<time datetime="${esc(r.at)}">${esc(r.at.slice(11, 23))}</time>`,
      badge(HOW[r.action] ?? r.action, r.action === 'failed' ? 'bad' : r.action === 'runtime' ? 'ok' : 'neutral'),
      `${esc(r.durationMs)} ms ${bar}`,
      r.sinceChangeMs === undefined ? '—' : `${esc(r.sinceChangeMs)} ms`,
      esc(r.revision),
      esc(changed.join(' ') || '—'),
      esc(r.error ?? r.reason ?? '—'),
    ];
  });
  const note = `<p class="note">Applies seen since this edgelb started (the controller keeps the last; ${esc(status.counters.applies)} in all). Duration: the apply's own. Change → applied: from the moment edgelb saw the change (an etcd watch event, a certificate file) to the apply's end, the 25 ms coalescing wait included; etcd keeps no write times, so the write itself is not in it.</p>`;
  return (
    table(
      'Recent applies, newest first',
      ['Time (UTC)', 'How', 'Duration', 'Change → applied', 'Revision', 'Services changed', 'Reason or error'],
      rows,
      'No apply yet.',
    ) + note
  );
}

function rejected(status: StatusReport): string {
  const rows = [
    ...status.rejected.map((r) => [esc(r.key), badge('rejected', 'bad'), esc(r.code), esc(r.reason)]),
    ...status.excluded.map((e) => [esc(`services/${e.service}`), badge('refused by HAProxy', 'bad'), 'haproxy_rejected', esc(e.reason)]),
    ...status.warnings.map((w) => [esc(w.key), badge('served, with a warning', 'warn'), '—', esc(w.reason)]),
    ...status.certificatesRejected.map((c) => [esc(c.source), badge('certificate rejected', 'bad'), '—', esc(c.reason)]),
    ...status.certificateSelectionWarnings.map((w) => ['certificates', badge('warning', 'warn'), '—', esc(w)]),
  ];
  return table('Entries left out or served with a warning', ['Key', 'Outcome', 'Code', 'Reason'], rows, 'Every entry is served.');
}

/** Issue 16: what needs doing about certificates before clients notice, above the certificate table. */
function certificateWarnings(status: StatusReport): string {
  if (status.certificateWarnings.length === 0) return '';
  const label = { expiring: 'expiring', renewal_failing: 'renewal failing', default_only: 'default certificate only' } as const;
  const rows = status.certificateWarnings.map((w) => [
    badge(label[w.kind], w.kind === 'default_only' ? 'warn' : 'bad'),
    esc(w.subject),
    esc(w.detail),
    esc(w.since?.slice(0, 10) ?? '—'),
  ]);
  return table('Certificate warnings', ['Warning', 'Certificate or host', 'Detail', 'Since'], rows, '');
}

function etcd(status: StatusReport): string {
  const e = status.etcd;
  return `<dl class="facts">
<div><dt>Connection</dt><dd>${badge(e.connected ? 'watching' : 'not connected', e.connected ? 'ok' : 'bad')}${e.error ? ` <span class="reason">${esc(e.error.code)}: ${esc(e.error.message)}</span>` : ''}</dd></div>
<div><dt>API</dt><dd>${esc(e.api ?? 'undecided')}${e.apiReason ? ` (${esc(e.apiReason)})` : ''}</dd></div>
<div><dt>Endpoints</dt><dd>${list(e.endpoints)}</dd></div>
<div><dt>Prefix</dt><dd><code>${esc(e.prefix)}</code></dd></div>
<div><dt>Applied revision</dt><dd>${esc(e.revision ?? '—')}</dd></div>
</dl>`;
}

const PEER_STATE: Readonly<Record<string, readonly [string, Tone]>> = {
  established: ['established', 'ok'],
  not_established: ['not connected', 'warn'],
  unknown: ['unknown', 'neutral'],
};

/** KONTENA_LB_PEERS=etcd: the replicas this one shares its limits' counters with, and whether their sessions are up. */
function peers(report: PeersReport | null): string {
  if (!report) return '<p class="empty">Shared counters between replicas are off (KONTENA_LB_PEERS), or no config is applied yet.</p>';
  const rows = report.remotes.map((p) => {
    const [label, tone] = PEER_STATE[p.state] ?? ['unknown', 'neutral'];
    const since = p.notEstablishedSeconds === null ? '' : ` for ${p.notEstablishedSeconds} s`;
    return [esc(p.name), esc(p.address), badge(p.warning ? `${label}${since}` : label, p.warning ? 'bad' : tone), esc(p.lastStatus ?? '—')];
  });
  const error = report.error ? `<p class="reason">HAProxy could not be asked: ${esc(report.error)}</p>` : '';
  return `<p>This replica: <code>${esc(report.local.name)}</code> on ${esc(report.local.address)}</p>${error}${table(
    'Other replicas sharing the rate_limit and conn_limit counters',
    ['Peer', 'Address', 'Session', 'HAProxy last_status'],
    rows,
    'No other replica registered: this one counts alone.',
  )}`;
}

function acme(status: AcmeStatus | undefined): string {
  if (!status) return '<p class="empty">Let\'s Encrypt (ACME) is off.</p>';
  const rows = status.domains.map((d) => [
    esc(d.domain),
    badge(d.state?.status ?? 'not ordered yet', d.state?.status === 'valid' ? 'ok' : d.state?.status === 'failing' ? 'bad' : 'neutral'),
    esc(d.certificate?.notAfter.slice(0, 10) ?? '—'),
    esc(d.running ? `ordering now; ${d.next}` : d.next),
    esc(d.state?.lastError ? `${d.state.lastError.at.slice(0, 19)}: ${d.state.lastError.message}` : '—'),
  ]);
  const skipped = status.skipped.map((s) => [esc(s.domain), badge('skipped', 'warn'), '—', esc(`${s.reason} (${s.source})`), '—']);
  return `<p>${badge(status.leader ? 'this replica is the leader' : 'another replica leads (or none yet)', status.leader ? 'ok' : 'neutral')}</p>${table('ACME domains', ['Domain', 'State', 'Valid until', 'Next', 'Last error'], [...rows, ...skipped], 'No domains to order.')}`;
}
