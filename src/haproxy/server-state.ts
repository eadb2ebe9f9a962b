import type { ConfigServer, NextServerStates } from '../render/servers.js';

/**
 * Splits the servers of the next config into those whose state the running worker has and the
 * others, which start DOWN until proven healthy. A state is carried when the running worker has
 * the same server at the same address, port and check port (HAProxy takes all three from the
 * file over the config); a server in `moving` (its move to a new address waits for its proof) is
 * carried at its old address, serving, and moved once proven. Servers in maintenance forced
 * through the runtime API (drained ones) are not carried: one that comes back must not start in
 * maintenance. Servers whose check only HAProxy can run are neither: they start as HAProxy
 * decides. Columns are found by their names in the header HAProxy writes (management guide,
 * "show servers state"), as the template writes them.
 */
export function nextServerStates(running: string, next: readonly ConfigServer[], moving: ReadonlySet<string> = new Set()): NextServerStates {
  const lines = running.split('\n');
  const header =
    lines
      .find((l) => l.startsWith('# '))
      ?.slice(2)
      .trim()
      .split(/\s+/) ?? [];
  const at = (name: string) => header.indexOf(name);
  const [backend, server, addr, admin, port, checkPort] = ['be_name', 'srv_name', 'srv_addr', 'srv_admin_state', 'srv_port', 'srv_check_port'].map(at) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if ([backend, server, addr, admin, port, checkPort].some((i) => i < 0)) return freshServerStates(next);
  // HAProxy applies srv_use_ssl from the file over the server line: a row from before a change of
  // backend_protocol would turn TLS off (or on) for the server. Such a server starts afresh.
  const useSsl = at('srv_use_ssl');

  const byId = new Map(next.map((s) => [`${s.proxy}/${s.name}`, s]));
  const carried: string[] = [];
  const kept = new Set<string>();
  for (const line of lines.slice(1)) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const cols = line.trim().split(/\s+/);
    if (cols.length !== header.length) continue;
    // srv_admin_state bit 0x01: maintenance forced from the CLI.
    if ((Number(cols[admin]) & 0x01) !== 0) continue;
    const id = `${cols[backend]}/${cols[server]}`;
    const next = byId.get(id);
    if (next === undefined || String(next.checkPort ?? 0) !== cols[checkPort]) continue;
    if (useSsl >= 0 && cols[useSsl] !== (next.ssl ? '1' : '0')) continue;
    const sameAddress = next.host === cols[addr] && String(next.port) === cols[port];
    if (!sameAddress && !moving.has(id)) continue;
    carried.push(line.trim());
    kept.add(id);
  }
  return { carried, down: startsDown(next.filter((s) => !kept.has(`${s.proxy}/${s.name}`))) };
}

/** A start with nothing to carry: every server the controller can probe starts DOWN. */
export function freshServerStates(next: readonly ConfigServer[]): NextServerStates {
  return { carried: [], down: startsDown(next) };
}

export const NO_SERVER_STATES: NextServerStates = { carried: [], down: [] };

function startsDown(servers: readonly ConfigServer[]): ConfigServer[] {
  return servers.filter((s) => s.check.kind !== 'haproxy-only');
}
