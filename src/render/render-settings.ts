import type { AccessLogFormat } from '../settings/access-log.js';
import type { SyslogTarget } from '../settings/syslog-target.js';
import type { TlsVersion } from '../settings/tls.js';
import type { PeersSettings, PeersTlsFiles } from './peers-view.js';

/** Everything the templates need besides the routes; all of it comes from Config. */
export interface RenderSettings {
  readonly httpPort: number;
  readonly adminSocket: string;
  readonly errorsDir: string;
  /** The map file of ACME challenge tokens. */
  readonly challengeMap: string;
  /** The map file of canary shares (service → percent), changed through the runtime API. */
  readonly canaryMap: string;
  readonly globalSettings: readonly string[];
  readonly defaultsSettings: readonly string[];
  readonly hardStopAfter: string;
  /** The local peer's socket: the next worker inherits the stick tables' counters through it on reload. */
  readonly peerSocket: string;
  /** KONTENA_LB_PEERS=etcd (issue 15): every replica's peer (render/peers-view.ts); absent: the local one on peerSocket. */
  readonly peers?: PeersSettings;
  /** KONTENA_LB_PEERS_CERT: the files the peers section's TLS reads (state dir); absent: peer traffic is plain TCP. */
  readonly peersTls?: PeersTlsFiles;
  /** Where edgelb leaves `show servers state` for the next worker, so health survives a reload. */
  readonly serverStateFile: string;
  /** Health-check timings of every server line, e.g. `2000ms`. */
  readonly checkInterval: string;
  /** Re-check interval after a state change starts (one failure or success): detection within about a second. */
  readonly checkFastInterval: string;
  /** Accept the PROXY protocol on the HTTP, HTTPS and TCP listeners (behind an L4 load balancer). */
  readonly acceptProxy: boolean;
  /** KONTENA_LB_TRUSTED_PROXIES: X-Forwarded-For names the client on their connections only (none: never). */
  readonly trustedProxies?: readonly string[];
  /** HAProxy `timeout tunnel`: how long an idle WebSocket or other upgraded connection stays open. */
  readonly tunnelTimeout: string;
  /** KONTENA_LB_HEALTH_URI, answered 200 by HAProxy itself; absent: that path is routed like any other. */
  readonly healthUri?: string;
  /**
   * KONTENA_LB_ACCESS_LOG: the access log HAProxy writes itself, to its standard output (edgelb's,
   * inherited) and to the syslog target: `text` (httplog/tcplog), `json` or `off`.
   */
  readonly accessLog: AccessLogFormat;
  /** SYSLOG_TARGET: HAProxy's messages and the access log also go there; absent: no syslog. */
  readonly syslog?: SyslogTarget;
  /** HAProxy's statistics page; absent (no STATS_PASSWORD): off. */
  readonly stats?: StatsSettings;
  /** A unix socket for HAProxy's built-in Prometheus exporter (read by the admin port); none when absent. */
  readonly metricsSocket?: string;
  /** Present only when at least one certificate is served: otherwise nothing listens for HTTPS. */
  readonly tls?: TlsSettings;
}

export interface TlsSettings {
  readonly port: number;
  readonly crtList: string;
  readonly http2: boolean;
  /** KONTENA_LB_SSL_MIN_VERSION, HAProxy's ssl-min-ver. */
  readonly minVersion: TlsVersion;
  readonly ciphers: string;
  /** KONTENA_LB_SSL_CIPHERSUITES (TLS 1.3); absent: OpenSSL's. */
  readonly ciphersuites?: string;
  /** Named in the config so that a change of default certificate is a config change (a reload). */
  readonly defaultCert: string;
  /** No TLS session resumption: host names check client certificates against different CAs (client-auth-lines.ts). */
  readonly noResumption?: boolean;
}

export interface StatsSettings {
  readonly port: number;
  /** Secret (STATS_PASSWORD), checked by config.ts to be safe unquoted in `stats auth`. */
  readonly password: string;
}
