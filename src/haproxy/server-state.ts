import type { ConfigServer, NextServerStates } from '../render/servers.js';

/**
 * Splits the servers of the next config into those whose state the running worker has (same
 * server at the same address and port) and the others, which start DOWN until proven healthy.
 * Servers in maintenance forced through the runtime API (drained ones) are not carried: one that
 * comes back must not start in maintenance. Servers whose check only HAProxy can run are neither:
 * they start as HAProxy decides. Columns (management guide, "show servers state"): be_id be_name
 * srv_id srv_name srv_addr srv_op_state srv_admin_state ...; srv_port is the 19th.
 */
export function nextServerStates(running: string, next: readonly ConfigServer[]): NextServerStates {
  const byId = new Map(next.map((s) => [`${s.proxy}/${s.name}`, s]));
  const carried: string[] = [];
  const kept = new Set<string>();
  for (const line of running.split('\n').slice(1)) {
    if (line.startsWith('#')) continue;
    const cols = line.trim().split(/\s+/);
    if (cols.length < 19) continue;
    // srv_admin_state bit 0x01: maintenance forced from the CLI.
    if ((Number(cols[6]) & 0x01) !== 0) continue;
    const id = `${cols[1]}/${cols[3]}`;
    const server = byId.get(id);
    if (server === undefined || server.host !== cols[4] || String(server.port) !== cols[18]) continue;
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
