import { sendCommand } from '../haproxy/master-cli.js';

/** One server line of HAProxy's `show stat`: an instance and what its health check says. */
export interface ServerStat {
  /** The HAProxy proxy: `http-<service>` or `tcp-<service>`. */
  readonly proxy: string;
  /** The server name: the instance name from `upstreams/<instance>`. */
  readonly server: string;
  /** `up`, `down`, `maint`, `drain`, `nolb`, `unchecked`, or `unknown`. */
  readonly health: string;
  /** HAProxy's own status text, e.g. `UP`, `DOWN 1/2`, `MAINT (resolution)`. */
  readonly status: string;
  /** The last check's result, e.g. `L4OK`, `L7STS`, `L4CON`; empty when not checked. */
  readonly check: string;
  /** Seconds since the status last changed. */
  readonly lastChangeSeconds: number | undefined;
  readonly currentSessions: number;
  readonly totalSessions: number;
}

/**
 * Reads `show stat` from the runtime API socket (management guide 9.3, "show stat": CSV with a
 * `# pxname,svname,...` header; the column set grows between versions, so columns are looked
 * up by name, never by position).
 */
export async function readServerStats(adminSocket: string, timeoutMs = 2000): Promise<ServerStat[]> {
  return parseShowStat(await sendCommand(adminSocket, 'show stat', timeoutMs));
}

export function parseShowStat(text: string): ServerStat[] {
  const lines = text.split('\n');
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) throw new Error(`unexpected answer to "show stat": ${JSON.stringify(text.slice(0, 80))}`);
  const columns = header.slice(2).split(',');
  const at = (name: string) => columns.indexOf(name);
  const [px, sv, status, check, lastChange, scur, stot] = ['pxname', 'svname', 'status', 'check_status', 'lastchg', 'scur', 'stot'].map(at);
  const stats: ServerStat[] = [];
  for (const line of lines) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const cells = line.split(',');
    const server = cells[sv!] ?? '';
    if (server === 'FRONTEND' || server === 'BACKEND') continue;
    const statusText = cells[status!] ?? '';
    const changed = cells[lastChange!];
    stats.push({
      proxy: cells[px!] ?? '',
      server,
      health: healthOf(statusText),
      status: statusText,
      check: (cells[check!] ?? '').replace(/^\* /, ''),
      lastChangeSeconds: changed ? Number(changed) : undefined,
      currentSessions: Number(cells[scur!] ?? 0) || 0,
      totalSessions: Number(cells[stot!] ?? 0) || 0,
    });
  }
  return stats;
}

/** HAProxy's status column, reduced to a few words a dashboard can count on. */
function healthOf(status: string): string {
  const word = status.split(' ')[0]!.toUpperCase();
  switch (word) {
    case 'UP':
      return 'up';
    case 'DOWN':
      return 'down';
    case 'MAINT':
      return 'maint';
    case 'DRAIN':
      return 'drain';
    case 'NOLB':
      return 'nolb';
    case 'NO':
      return 'unchecked';
    default:
      return 'unknown';
  }
}
