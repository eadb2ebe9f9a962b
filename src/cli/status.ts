import http from 'node:http';
import type { Command } from 'commander';
import type { StatusReport } from '../admin/status.js';
import { EdgelbError } from '../errors.js';
import type { CliDeps } from './deps.js';
import { layoutTable } from './table.js';

interface StatusFlags extends Record<string, unknown> {
  readonly json?: boolean;
  readonly adminPort?: string;
  readonly adminBind?: string;
}

/** `edgelb status`: what the running controller serves, from its admin port's /status. */
export function registerStatusCommand(program: Command, deps: CliDeps): void {
  program
    .command('status')
    .description('show what the running edgelb serves: services, routes, instances and their health, certificates, peers, last apply, errors')
    .option('--json', "print the admin port's /status JSON as it is")
    .option('--admin-port <port>', "the running edgelb's admin port [env KONTENA_LB_ADMIN_PORT]", undefined)
    .option('--admin-bind <address>', 'the address it listens on [env KONTENA_LB_ADMIN_BIND]', undefined)
    .addHelpText(
      'after',
      `
Asks the edgelb running on this machine (its admin port, ${'`'}KONTENA_LB_ADMIN_PORT${'`'}, default 8404
on 127.0.0.1) and prints its answer; nothing is read from etcd. Instance health is HAProxy's
own (its health checks, from the runtime API's "show stat").

Exit status: 0 healthy, 1 serving but the last apply failed, or not serving, 2 edgelb cannot be reached.

Examples:
  edgelb status
  edgelb status --json | jq '.services[] | {name, instances}'
  docker exec edgelb edgelb status`,
    )
    .action(async (flags: StatusFlags) => {
      const config = deps.loadConfig(flags, { needsEtcd: false });
      const host = config.adminBind === '0.0.0.0' ? '127.0.0.1' : config.adminBind === '::' ? '::1' : config.adminBind;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.adminPort}/status`;
      let body: string;
      try {
        body = await fetchText(url, 5000);
      } catch (error) {
        deps.fail(`cannot reach edgelb's admin port at ${url} (${(error as Error).message}); is "edgelb run" running here with this KONTENA_LB_ADMIN_PORT?`, 2);
      }
      let report: StatusReport;
      try {
        report = JSON.parse(body) as StatusReport;
      } catch {
        deps.fail(`${url} did not answer with JSON; is that port edgelb's admin port?`, 2);
      }
      deps.out(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatStatus(report, url).join('\n')}\n`);
      if (report.health.status !== 'ok') deps.exitCode(1);
    });
}

function fetchText(url: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new EdgelbError('http_status', `HTTP ${res.statusCode}`)),
      );
    });
    req.on('timeout', () => req.destroy(new EdgelbError('http_timeout', `no answer within ${timeoutMs / 1000} s`)));
    // The system's code (ECONNREFUSED) is the whole message: the operator's line says the rest.
    req.on('error', (error: NodeJS.ErrnoException) =>
      reject(error instanceof EdgelbError ? error : new EdgelbError('http_unreachable', error.code ?? error.message, { cause: error })),
    );
  });
}

/** The human form: a summary, then one table per kind of thing, then what is wrong. */
export function formatStatus(report: StatusReport, url: string): string[] {
  const lines: string[] = [];
  const health = report.health.status === 'ok' ? 'healthy' : `${report.health.status.toUpperCase()}: ${report.health.reason}`;
  lines.push(`edgelb ${report.version} (${url}): ${health}`);
  lines.push(
    `HAProxy:    ${report.haproxy.running ? `running, pid ${report.haproxy.pid}` : 'NOT RUNNING'}, ${report.haproxy.restarts} restarts${report.haproxy.statsError ? ` (health unknown: ${report.haproxy.statsError})` : ''}`,
  );
  const etcd = report.etcd;
  const api = etcd.api ? `etcd ${etcd.api} API` : 'both etcd APIs (auto: waiting for the first write)';
  lines.push(
    `etcd:       ${etcd.connected ? 'watching' : 'NOT CONNECTED'} ${etcd.prefix}/ through the ${api} at ${etcd.endpoints.join(',')}, applied revision ${etcd.revision ?? '-'}`,
  );
  if (etcd.error) lines.push(`            ${etcd.error.code}: ${etcd.error.message}`);
  const last = report.lastApply;
  lines.push(
    `last apply: ${last ? `${last.action} at ${last.at} in ${last.durationMs} ms (revision ${last.revision})${last.error ? `: ${last.error}` : ''}` : 'none yet'}`,
  );
  const peers = report.peers;
  if (peers) {
    const up = peers.remotes.filter((p) => p.state === 'established').length;
    lines.push(
      `peers:      this replica ${peers.local.name} on ${peers.local.address}; ${up} of ${peers.remotes.length} other replicas connected${peers.error ? ` (HAProxy: ${peers.error})` : ''}`,
    );
  }
  const c = report.counters;
  lines.push(`counters:   ${c.applies} applies, ${c.reloads} reloads, ${c.runtimeUpdates} runtime updates, ${c.failures} failures`);

  lines.push('');
  if (report.services.length === 0) lines.push('no services served');
  else {
    lines.push(
      ...layoutTable(
        ['SERVICE', 'KIND', 'HOSTS / PORT', 'PATHS', 'INSTANCES UP'],
        report.services.map((s) => [
          s.name,
          s.kind,
          s.kind === 'tcp' ? `:${s.port}` : s.hosts.join(',') || '-',
          s.paths.join(',') || '-',
          `${s.instances.filter((i) => i.health === 'up').length}/${s.instances.length}`,
        ]),
      ),
    );
  }
  if (report.routes.length > 0) {
    lines.push(
      '',
      ...layoutTable(
        ['ROUTE', 'HOST', 'PATH', 'SERVICE'],
        report.routes.map((r) => [String(r.order), r.hosts.join(',') || '*', r.path ?? '*', r.service]),
      ),
    );
  }
  const instances = report.services.flatMap((s) =>
    s.instances.map((i) => [s.name, i.name, i.address, i.health, i.check ?? '-', i.lastChangeSeconds === null ? '-' : `${i.lastChangeSeconds}s`]),
  );
  if (instances.length > 0) lines.push('', ...layoutTable(['SERVICE', 'INSTANCE', 'ADDRESS', 'HEALTH', 'CHECK', 'SINCE'], instances));
  if (peers && peers.remotes.length > 0) {
    lines.push(
      '',
      ...layoutTable(
        ['PEER', 'ADDRESS', 'SESSION', 'LAST STATUS', 'DOWN FOR'],
        peers.remotes.map((p) => [
          p.name,
          p.address,
          p.warning ? `${p.state.toUpperCase()} (warning)` : p.state,
          p.lastStatus ?? '-',
          p.notEstablishedSeconds === null ? '-' : `${p.notEstablishedSeconds}s`,
        ]),
      ),
    );
  }
  if (report.certificates.length > 0) {
    lines.push(
      '',
      ...layoutTable(
        ['CERTIFICATE', 'SOURCE', 'NAMES', 'NOT AFTER', 'DAYS LEFT', 'SERVED'],
        report.certificates.map((cert) => [
          cert.id,
          cert.source,
          cert.names.join(','),
          cert.notAfter.replace(/\.\d{3}Z$/, 'Z'),
          String(cert.daysLeft),
          cert.served ? (cert.default ? 'yes (default)' : 'yes') : cert.expired ? 'no (expired)' : 'no',
        ]),
      ),
    );
  }
  const problems = [
    ...report.rejected.map((r) => ['entry rejected', r.key, r.service ? `${r.reason} (service ${r.service} left out)` : r.reason]),
    ...report.excluded.map((e) => ['HAProxy refused', e.service, e.reason]),
    ...(report.warnings ?? []).map((w) => ['entry warning', w.key, w.reason]),
    ...report.certificatesRejected.map((r) => ['certificate rejected', r.source, r.reason]),
    ...(report.certificateSelectionWarnings ?? []).map((w) => ['certificate warning', '-', w]),
    // An edgelb before issue 16 answers plain strings here.
    ...(report.certificateWarnings ?? []).map((w) =>
      typeof w === 'string' ? ['certificate warning', '-', w] : [`certificate ${w.kind}`, w.subject, w.detail],
    ),
    ...(peers?.warnings ?? []).map((w) => ['peer not connected', '-', w]),
  ];
  if (problems.length > 0) lines.push('', ...layoutTable(['PROBLEM', 'KEY / SOURCE', 'REASON'], problems));
  return lines;
}
