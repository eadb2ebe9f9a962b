import { HTTP_SECTION, TCP_SECTION } from '../model/keyspace.js';
import { fieldRowsOf } from '../model/keyspace-rows.js';
import { sameValue } from '../model/state-changes.js';
import type { HttpService, TcpService } from '../model/types.js';

/** Shown elsewhere in /status (hosts, paths, port) or secret (basic-auth lines). */
const NOT_LISTED = new Set(['virtual_hosts', 'virtual_path', 'external_port', 'basic_auth_secrets']);

/**
 * A service's settings that differ from their defaults, by etcd key (`rate_limit`, `ip_allow`,
 * `backend_protocol`, ...), read off the key table: a new key shows here with no code of its own.
 * A close-service key whose value could not be used shows as `"closed"`.
 */
export function settingsReportOf(service: HttpService | TcpService): Record<string, unknown> {
  const section = service.kind === 'http' ? HTTP_SECTION : TCP_SECTION;
  const fields = service as unknown as Record<string, unknown>;
  const report: Record<string, unknown> = {};
  for (const row of fieldRowsOf(section)) {
    if (NOT_LISTED.has(row.key) || !('value' in row.absent)) continue;
    const value = fields[String(row.prop)];
    if (sameValue(value, row.absent.value)) continue;
    report[row.key] = row.closed && sameValue(value, row.closed.value) ? 'closed' : value;
  }
  return report;
}
