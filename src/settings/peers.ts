import os from 'node:os';
import { parsePeerAddress, parsePeerName, type Peer } from '../model/peers.js';
import { EntryError } from '../model/values.js';
import { ConfigError } from './config-error.js';
import { group, setting } from './setting.js';
import { checked, parsedBy } from './values.js';

// Issue 15: rate and connection counters shared between replicas through HAProxy's peers protocol.

const PEERS_MODES = ['off', 'etcd'] as const;

/** A model parser (it throws EntryError) as a setting's schema, its message naming the variable. */
const peerValue = (parse: (raw: string) => string) => (env: string) =>
  parsedBy((raw) => {
    try {
      return parse(raw);
    } catch (error) {
      if (error instanceof EntryError) throw new ConfigError(`${env}: ${error.message}`);
      throw error;
    }
  });

export const peerSettings = group(
  {
    peersMode: setting({
      env: 'KONTENA_LB_PEERS',
      flag: 'peers',
      default: 'off',
      schema: (env) =>
        checked(
          (raw) => (PEERS_MODES as readonly string[]).includes(raw),
          (raw) => `${env} must be off or etcd, got ${JSON.stringify(raw)}`,
        ).transform((raw) => raw as (typeof PEERS_MODES)[number]),
      help: 'share rate_limit/conn_limit counters with the other replicas: off or etcd',
      doc: "`etcd`: each replica registers its peer address under `<path>/peers/<name>` and every replica's HAProxy shares the `rate_limit` and `conn_limit` counters with all the others (HAProxy peers), so a client cannot multiply a limit by the number of replicas. `off`: each replica counts alone (counters still survive its own reloads). See [Shared counters between replicas](#shared-counters-between-replicas)",
    }),
    peersAddress: setting({
      env: 'KONTENA_LB_PEERS_ADDRESS',
      flag: 'peers-address',
      schema: peerValue(parsePeerAddress),
      help: 'with KONTENA_LB_PEERS=etcd: IP:port this replica listens on for its peers and registers (required)',
      doc: "with `KONTENA_LB_PEERS=etcd`, required: `<IP>:<port>` (or `[<IPv6>]:<port>`) where this replica's HAProxy listens for the other replicas' peer connections, and which it registers for them: the container's overlay network address (on Kontena, its `*.kontena.local` IP), e.g. `10.81.0.5:7946`; it must be an address of this host (checked at start: HAProxy binds it). Plain TCP: keep the port on the private network. No host names (HAProxy resolves them only at start)",
    }),
    peerName: setting({
      env: 'KONTENA_LB_PEER_NAME',
      flag: 'peer-name',
      schema: peerValue(parsePeerName),
      help: "this replica's name among the peers (default: the host name)",
      docDefault: 'the host name (a container id in a container)',
      doc: "this replica's name among the peers, unique per replica: 1–63 letters, digits, `_`, `.`, `-`",
    }),
  },
  ({ peersMode, peersAddress, peerName }): { readonly peers: Peer | undefined } => {
    if (peersMode === 'off') return { peers: undefined };
    if (peersAddress === undefined)
      throw new ConfigError('KONTENA_LB_PEERS=etcd needs KONTENA_LB_PEERS_ADDRESS: the <IP>:<port> the other replicas reach this one on');
    return { peers: { name: peerName ?? hostPeerName(), address: peersAddress } };
  },
);

/** The host name as a peer name (a container's id); one that is not a valid name asks for the setting. */
function hostPeerName(): string {
  const host = os.hostname();
  try {
    return parsePeerName(host);
  } catch {
    throw new ConfigError(`the host name ${JSON.stringify(host)} is not a valid peer name: set KONTENA_LB_PEER_NAME`);
  }
}
