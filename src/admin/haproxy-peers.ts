import { EdgelbError } from '../errors.js';
import { sendCommand } from '../haproxy/master-cli.js';

/** One peer of HAProxy's `show peers`: a member of the peers section and its session as HAProxy sees it. */
export interface PeerSession {
  readonly name: string;
  /** This process's own peer (`localpeer`): it holds no session with the others, only with its next worker. */
  readonly local: boolean;
  /** The address HAProxy connects to (`addr=`). */
  readonly address: string;
  /** HAProxy holds a session or a connection attempt with the peer now (`active`, against `inactive`). */
  readonly active: boolean;
  /**
   * `last_status`: how the last session attempt went (peers.c statuscode_str): NONE, CONN
   * (connecting), HSHK (connected, handshake under way), ESTA (established), RETR (the peer asked
   * to retry), and the peer's refusals PROT, VERS, NAME (not the name it listens as), UNKN (it does
   * not know this replica).
   */
  readonly lastStatus: string;
  /** A session with the peer is up: an active peer whose last handshake succeeded. */
  readonly established: boolean;
  /** Seconds since the last handshake (`last_hdshk`); null: never. */
  readonly lastHandshakeSeconds: number | null;
  /** Seconds until HAProxy tries again (`reconnect`); null: not scheduled, or already due. */
  readonly reconnectSeconds: number | null;
  /** Connections opened to or accepted from the peer (`new_conn`). */
  readonly newConnections: number | null;
  /** Messages from the peer HAProxy could not read (`proto_err`). */
  readonly protocolErrors: number | null;
  /** The stick tables shared with the peer. */
  readonly tables: number;
}

/**
 * Reads every peer of the peers section from the runtime API socket (management guide 2.6, 9.3
 * "show peers [dict|-] [<peers section>]"). The answer is a debugging dump, not a stable format:
 * the parser takes the fields it knows by their `name=` wherever they are on the peer's lines and
 * leaves the rest alone, so a field added, moved or missing in another version costs only itself.
 */
export async function readPeerSessions(adminSocket: string, timeoutMs = 2000): Promise<PeerSession[]> {
  return parseShowPeers(await sendCommand(adminSocket, 'show peers', timeoutMs));
}

/** A peer's first line: `  0x55f9…: id=lb-b(remote,active) addr=127.0.0.1:7947 last_status=ESTA …`. */
const PEER_LINE = /^\s+0x[0-9a-f]+: id=(\S+?)\((local|remote),(active|inactive)\)/;
/** A peers section's own line, at the start of the line: `0x55f9…: [02/Dec/2026:07:15:34] id=edgelb …`. */
const SECTION_LINE = /^0x[0-9a-f]+: /;

export function parseShowPeers(text: string): PeerSession[] {
  if (text.trim() !== '' && !SECTION_LINE.test(text)) {
    throw new EdgelbError('haproxy_answer_unreadable', `unexpected answer to "show peers": ${JSON.stringify(text.slice(0, 80))}`);
  }
  const peers: PeerSession[] = [];
  let current: { name: string; local: boolean; active: boolean; fields: Map<string, string>; tables: number; inTables: boolean } | undefined;
  const finish = () => {
    if (current) peers.push(sessionOf(current));
    current = undefined;
  };
  for (const line of text.split('\n')) {
    if (SECTION_LINE.test(line)) {
      finish();
      continue;
    }
    const peer = PEER_LINE.exec(line);
    if (peer) {
      finish();
      current = { name: peer[1]!, local: peer[2] === 'local', active: peer[3] === 'active', fields: new Map(), tables: 0, inTables: false };
    }
    if (!current) continue;
    if (line.trim() === 'shared tables:') current.inTables = true;
    else if (current.inTables) {
      // Each shared table ends with its `table:0x… id=<name>` line (`remote_table:` and `last_local_table:` come before the list).
      if (/^\s+table:0x/.test(line)) current.tables++;
    } else {
      for (const [, key, value] of line.matchAll(/(?:^|\s)([a-z_]+)=(\S*)/g)) if (!current.fields.has(key!)) current.fields.set(key!, value!);
    }
  }
  finish();
  return peers;
}

function sessionOf(peer: { name: string; local: boolean; active: boolean; fields: Map<string, string>; tables: number }): PeerSession {
  const field = (name: string) => peer.fields.get(name);
  const lastStatus = field('last_status') ?? 'NONE';
  return {
    name: peer.name,
    local: peer.local,
    address: field('addr') ?? '',
    active: peer.active,
    lastStatus,
    // An inactive peer keeps the ESTA of a session that has ended (seen once the other replica is killed).
    established: peer.active && lastStatus === 'ESTA',
    lastHandshakeSeconds: secondsOf(field('last_hdshk')),
    reconnectSeconds: secondsOf(field('reconnect')),
    newConnections: countOf(field('new_conn')),
    protocolErrors: countOf(field('proto_err')),
    tables: peer.tables,
  };
}

/**
 * HAProxy's human_time(): up to two units of `<n>d`, `<n>h`, `<n>m`, `<n>s` (`2s`, `1m3s`,
 * `3d4h`); `<NEVER>`, `<PAST>` and anything else → null.
 */
export function secondsOf(text: string | undefined): number | null {
  if (!text) return null;
  const match = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!match) return null;
  const [, d, h, m, s] = match.map((part) => Number(part ?? 0));
  return d! * 86_400 + h! * 3600 + m! * 60 + s!;
}

function countOf(text: string | undefined): number | null {
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : null;
}
