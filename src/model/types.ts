import type { BasicAuth } from './basic-auth.js';
import type { RateLimit } from './limits.js';
import type { HTTP_SECTION, TCP_SECTION } from './keyspace.js';
import type { KeyRejectionCode, ServiceFields } from './keyspace-rows.js';

/** One running instance of a service, from `upstreams/<instance>` = `host:port`. */
export interface Upstream extends UpstreamAddress {
  /** `weights/<instance>`: 0–256, HAProxy's server `weight`; 0 takes it out of new traffic. */
  readonly weight: number;
}

/** An instance as `upstreams/<instance>` gives it; its options (keyspace.ts, instance-option rows) come beside it. */
export interface UpstreamAddress {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

/** A virtual host: an exact name, or `*.example.com` meaning every subdomain of example.com. */
export interface HostPattern {
  readonly name: string;
  readonly wildcard: boolean;
}

/**
 * Every field but kind, name and upstreams is read through a row of the key table (keyspace.ts),
 * which gives its type: a key added there is a field here without a line in this file (the
 * fields below are declared again for their documentation, and must agree with their rows).
 */
export interface HttpService extends ServiceFields<typeof HTTP_SECTION> {
  readonly kind: 'http';
  readonly name: string;
  readonly virtualHosts: readonly HostPattern[];
  /** Path prefixes without a trailing slash, e.g. `/api`; `/` matches every path. */
  readonly virtualPaths: readonly string[];
  readonly keepVirtualPath: boolean;
  readonly balance: string;
  readonly customSettings: readonly string[];
  readonly healthCheckUri: string | undefined;
  readonly healthCheckPort: number | undefined;
  /** undefined: no stickiness; '': the load balancer's own cookie; otherwise a full `cookie` line. */
  readonly cookie: string | undefined;
  /** HTTP basic auth from basic_auth_secrets; undefined: open. Holds secrets: never log it. */
  readonly basicAuth: BasicAuth | undefined;
  /** Redirect plain HTTP requests to HTTPS (301). */
  readonly sslRedirect: boolean;
  /** Strict-Transport-Security max-age in seconds, sent on HTTPS responses. */
  readonly hstsMaxAge: number | undefined;
  /** Obtain Let's Encrypt certificates for the exact virtual hosts. */
  readonly acme: boolean;
  /** rate_limit: requests per client address and period; undefined: no limit. */
  readonly rateLimit: RateLimit | undefined;
  /** conn_limit: concurrent requests per client address; 0: closed (the value was invalid); undefined: no limit. */
  readonly connLimit: number | undefined;
  readonly upstreams: readonly Upstream[];
  /** The CA bundles client_ca, client_crl and backend_ca name, as files: set by pipeline/ca-resolution.ts, never by the parser. */
  readonly caFiles?: ServiceCaFiles;
}

/** A service's CA bundle files (in the state dir), or why it is closed. */
export interface ServiceCaFiles {
  readonly clientCa?: string;
  readonly clientCrl?: string;
  readonly backendCa?: string;
  /** Host names under this service's wildcards that ask for another client check: their TLS server names are refused (421). */
  readonly otherChecks?: { readonly exact: readonly string[]; readonly suffixes: readonly string[] };
  /** Closed: client_ca, client_crl or client_verify cannot be used (403); backend_ca's bundle is missing (503). */
  readonly closed?: { readonly status: 403 | 503 };
}

/** As HttpService: the fields come from the rows of TCP_SECTION (keyspace.ts). */
export interface TcpService extends ServiceFields<typeof TCP_SECTION> {
  readonly kind: 'tcp';
  readonly name: string;
  readonly externalPort: number;
  readonly balance: string;
  readonly customSettings: readonly string[];
  /** conn_limit: concurrent connections per client address; 0: closed (the value was invalid); undefined: no limit. */
  readonly connLimit: number | undefined;
  readonly upstreams: readonly Upstream[];
}

/** What the load balancer should serve: every service that passed validation, sorted by name. */
export interface DesiredState {
  readonly http: readonly HttpService[];
  readonly tcp: readonly TcpService[];
}

/**
 * Why an entry was left out, as a stable code: metrics and `edgelb check` switch on it, never on
 * the reason's words (rewording a message must not change a metric).
 */
export type RejectionCode =
  // A single key, as its row in the key table says (keyspace.ts).
  | KeyRejectionCode
  // Rules across keys (parse.ts): the service limit, two TCP services on one port.
  | 'too_many_services'
  | 'port_conflict'
  // backend_protocol=https without backend_verify (issue 15): refused, never served unverified.
  | 'unverified_backend_tls'
  // canary naming no HTTP service being served (issue 15): the service is served without it.
  | 'unknown_canary'
  // canary on a service with basic auth, IP lists or limits, which its requests would skip.
  | 'canary_not_allowed'
  // A CA bundle or CRL under client-cas/, client-crls/, backend-cas/ that cannot be used.
  | 'invalid_ca_bundle'
  // client_ca, client_crl or client_verify that cannot be applied (a missing bundle, no client_ca,
  // no virtual_hosts, another service of the host asking otherwise): the service is closed, 403.
  | 'unusable_client_auth'
  // backend_ca naming a missing bundle: the service answers 503 (pipeline/ca-resolution.ts).
  | 'unusable_backend_ca';

/** An entry left out of the desired state, with the etcd key (relative to the LB path) and why. */
export interface Rejection {
  readonly key: string;
  readonly code: RejectionCode;
  readonly reason: string;
  /** Set when the whole service was left out, not only this key. */
  readonly service?: string;
}

/** An entry that is served as written, but with a cost the operator should know about (key relative to the LB path). */
export interface EntryWarning {
  readonly key: string;
  readonly reason: string;
}

export interface ParseResult {
  readonly state: DesiredState;
  readonly rejected: readonly Rejection[];
}

/** Raw entries read from etcd: keys relative to the LB path (`services/web/upstreams/web-1`). */
export type Entries = ReadonlyMap<string, string>;
