import type { AcmeDomainState } from '../acme/state.js';
import type { CertWarning } from '../tls/cert-warnings.js';
import type { CertListRow } from './cert-rows.js';
import { layoutTable } from './table.js';

/** `edgelb cert list`'s main table: one line per certificate. */
export function certTable(rows: readonly CertListRow[]): string[] {
  const header = ['NAME', 'SOURCE', 'SUBJECT CN', 'ALT NAMES', 'NOT AFTER', 'DAYS LEFT', 'ENCRYPTED', 'STATUS'];
  const cells = rows.map((row) => [
    row.name,
    row.source.kind,
    row.subject ?? '-',
    row.names.length > 0 ? row.names.join(',') : '-',
    row.notAfter?.replace(/\.\d{3}Z$/, 'Z') ?? '-',
    row.daysLeft === null ? '-' : String(row.daysLeft),
    row.encrypted ? 'yes' : 'no',
    row.status,
  ]);
  return layoutTable(header, cells);
}

/** The second table: each ACME domain's state as the issuer keeps it. */
export function acmeTable(states: readonly AcmeDomainState[], now: Date): string[] {
  const time = (iso: string | undefined) => iso?.replace(/\.\d{3}Z$/, 'Z') ?? '-';
  const header = ['ACME DOMAIN', 'STATUS', 'VALID UNTIL', 'FAILURES', 'NEXT ATTEMPT', 'LAST ERROR'];
  const cells = [...states]
    .sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0))
    .map((state) => [
      state.domain,
      state.status,
      time(state.validUntil),
      String(state.failures),
      state.nextAttempt && Date.parse(state.nextAttempt) > now.getTime() ? time(state.nextAttempt) : '-',
      state.lastError ? `${time(state.lastError.at)} ${state.lastError.message}` : '-',
    ]);
  return layoutTable(header, cells);
}

/** The certificate warnings a running edgelb logs and shows in /status (issue 16). */
export function warningTable(warnings: readonly CertWarning[]): string[] {
  const cells = warnings.map((w) => [w.kind, w.subject, w.since?.replace(/\.\d{3}Z$/, 'Z') ?? '-', w.detail]);
  return layoutTable(['WARNING', 'CERTIFICATE OR HOST', 'SINCE', 'DETAIL'], cells);
}
