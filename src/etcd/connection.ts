import type { EtcdApi } from './store.js';

/**
 * How to reach etcd, validated once from the ETCD_* settings and shared by every command that
 * talks to etcd (run, render, check, cert). Holds secrets: log `describeConnection()`, never this.
 */
export interface EtcdConnection {
  readonly endpoints: readonly string[];
  /** Which setting gave the endpoints, for the start log line. */
  readonly endpointsFrom: 'ETCD_ENDPOINTS' | 'ETCD_NODE' | 'default gateway' | 'default';
  /** ETCD_API: `auto` picks the API the platform writes with. */
  readonly api: 'auto' | EtcdApi;
  /** PEM text of ETCD_CA_FILE, ETCD_CERT_FILE and ETCD_KEY_FILE (secret: the key). */
  readonly tls: { readonly ca?: string; readonly cert?: string; readonly key?: string } | undefined;
  /** ETCD_USERNAME with ETCD_PASSWORD or ETCD_PASSWORD_FILE (secret: the password). */
  readonly auth: { readonly username: string; readonly password: string } | undefined;
}

/** What may be logged or shown about a connection: no password, no key material. */
export function describeConnection(connection: EtcdConnection): Record<string, unknown> {
  return {
    endpoints: connection.endpoints,
    endpointsFrom: connection.endpointsFrom,
    apiSetting: connection.api,
    tls: connection.tls === undefined ? false : { ca: connection.tls.ca !== undefined, clientCertificate: connection.tls.cert !== undefined },
    ...(connection.auth ? { username: connection.auth.username } : {}),
  };
}
