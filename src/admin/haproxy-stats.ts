import { EdgelbError } from '../errors.js';
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
  /** Sessions per second over the last second (`rate`); for HTTP, roughly new connections. */
  readonly sessionRate: number;
}

/**
 * Reads the server rows of `show stat` from the runtime API socket (management guide 9.3:
 * `show stat [{<iid>|<proxy>} {<type>|-1} {<sid>|-1}]`; type 4 is servers, so HAProxy neither
 * builds nor sends the frontend and backend rows).
 *
 * The CSV form, not `show stat json`, on purpose. HAProxy 2.6 writes string fields into its JSON
 * without escaping double quotes, and `last_chk` holds a backend's own HTTP reason phrase: one
 * backend answering its health check with `503 Busy, "really"` makes the whole answer invalid
 * JSON (seen on 2.6.12). The JSON is also about 35 times larger: with 10,000 servers 112 MB
 * (0.9 s to receive, 0.7 s of JSON.parse blocking the controller) against 2.3 MB of CSV. The
 * CSV quotes such fields (RFC 4180 style), and its columns are found by the header's names,
 * never by position: the column set grows between versions.
 */
export async function readServerStats(adminSocket: string, timeoutMs = 2000): Promise<ServerStat[]> {
  return parseShowStat(await sendCommand(adminSocket, 'show stat -1 4 -1', timeoutMs));
}

export function parseShowStat(text: string): ServerStat[] {
  const lines = text.split('\n');
  const header = lines.find((l) => l.startsWith('# '));
  if (!header) throw new EdgelbError('haproxy_answer_unreadable', `unexpected answer to "show stat": ${JSON.stringify(text.slice(0, 80))}`);
  const columns = new Map(
    header
      .slice(2)
      .split(',')
      .map((name, index) => [name, index]),
  );
  const stats: ServerStat[] = [];
  for (const line of lines) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const cells = splitCsvLine(line);
    const cell = (name: string) => cells[columns.get(name) ?? -1] ?? '';
    const server = cell('svname');
    if (server === 'FRONTEND' || server === 'BACKEND') continue;
    const statusText = cell('status');
    const changed = cell('lastchg');
    stats.push({
      proxy: cell('pxname'),
      server,
      health: healthOf(statusText),
      status: statusText,
      // "* " marks a check under way; the result shown is the last one.
      check: cell('check_status').replace(/^\* /, ''),
      lastChangeSeconds: changed ? Number(changed) : undefined,
      currentSessions: Number(cell('scur')) || 0,
      totalSessions: Number(cell('stot')) || 0,
      sessionRate: Number(cell('rate')) || 0,
    });
  }
  return stats;
}

/** One CSV line as HAProxy writes it: a field holding `,` or `"` is quoted, a quote inside doubled. */
function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let at = 0;
  while (at <= line.length) {
    if (line[at] === '"') {
      let value = '';
      let from = at + 1;
      for (;;) {
        const quote = line.indexOf('"', from);
        if (quote === -1) return [...cells, value + line.slice(from)];
        value += line.slice(from, quote);
        if (line[quote + 1] !== '"') {
          at = quote + 2;
          break;
        }
        value += '"';
        from = quote + 2;
      }
      cells.push(value);
    } else {
      const comma = line.indexOf(',', at);
      const end = comma === -1 ? line.length : comma;
      cells.push(line.slice(at, end));
      at = end + 1;
    }
  }
  return cells;
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
