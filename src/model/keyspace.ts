import { parseBasicAuthSecrets } from './basic-auth.js';
import { ACCESS_HTTP_ROWS, ACCESS_TCP_ROWS } from './keyspace-access.js';
import { CA_PATHS, CLIENT_AUTH_ROWS } from './keyspace-mtls.js';
import { CLOSED_CONN_LIMIT, parseConnLimit, parseRateLimit, type RateLimit } from './limits.js';
import { byDefault, fieldRow, fieldRowsOf, type FieldRow, type InstanceRow, type ServiceSection } from './keyspace-rows.js';
import { HTTP_ROUTING_ROWS, TCP_ROUTING_ROWS, WEIGHTS_DIR } from './keyspace-routing.js';
import type { HostPattern, HttpService, TcpService } from './types.js';
import {
  parseBalance,
  parseBoolean,
  parseCookie,
  parseHealthCheckUri,
  parseHostList,
  parseMaxAge,
  parseName,
  parsePathList,
  parsePort,
  parseSettingLines,
  parseUpstream,
} from './values.js';

/**
 * Every etcd key edgelb reads or writes under the load balancer's path, in one table: the
 * parser reads the per-service fields through it, `edgelb check` takes its directories from it,
 * and scripts/keyspace-table.ts writes the README's key tables from it. Adding a per-service key
 * is a row here, its validator in values.ts, its view and its template line.
 */

/** The directories and keys, relative to the load balancer's path. Nothing else spells them. */
export const KEY_PATHS = Object.freeze({
  services: 'services/',
  tcpServices: 'tcp-services/',
  certs: 'certs/',
  ...CA_PATHS,
  acme: 'acme/',
  acmeChallenges: 'acme/challenges/',
  acmeState: 'acme/state/',
  acmeReplicas: 'acme/replicas/',
  acmeAcks: 'acme/acks/',
  acmeAccount: 'acme/account',
  acmeLeader: 'acme/leader',
  /** v3: etcd's election (the etcd3 library's Election `leader` in the namespace `acme/`), one key per candidate. */
  acmeElection: 'acme/election/leader/',
  /** Certificates the ACME leader obtained: `certs/acme-<domain>`, in the vault beside imported ones. */
  acmeCerts: 'certs/acme-',
  peers: 'peers/', // issue 15: `peers/<name>` = a replica's HAProxy peer address, on its lease (KONTENA_LB_PEERS=etcd)
  /** A service's instances: `<service dir>/<service>/upstreams/<instance>`. */
  upstreams: 'upstreams',
  /** An instance's weight: `<service dir>/<service>/weights/<instance>` (issue 15). */
  weights: WEIGHTS_DIR,
});

/** The top-level directories, without their '/': a key anywhere else is read by nothing. */
const TOP_DIR_PATHS = [KEY_PATHS.services, KEY_PATHS.tcpServices, KEY_PATHS.certs, ...Object.values(CA_PATHS), KEY_PATHS.acme, KEY_PATHS.peers];
export const TOP_DIRS: readonly string[] = TOP_DIR_PATHS.map((dir) => dir.slice(0, -1));

/** The kind of service a top-level directory (`services`) holds, or undefined for any other. */
export function serviceKindOfDir(top: string): 'http' | 'tcp' | undefined {
  return `${top}/` === KEY_PATHS.services ? 'http' : `${top}/` === KEY_PATHS.tcpServices ? 'tcp' : undefined;
}

type RowOf<P extends string, T> = Omit<FieldRow<P, T>, 'prop' | 'code' | 'scope'>;
const http = <P extends string, T>(prop: P, row: RowOf<P, T>) => fieldRow(prop, { ...row, scope: 'http' });
const tcp = <P extends string, T>(prop: P, row: RowOf<P, T>) => fieldRow(prop, { ...row, scope: 'tcp' });
const instance = (row: Omit<InstanceRow, 'scope' | 'parse' | 'invalid' | 'code' | 'key'>): InstanceRow => ({
  ...row,
  key: `${KEY_PATHS.upstreams}/<instance>`,
  scope: 'instance',
  parse: (name, raw) => parseUpstream(parseName(name, 'instance'), raw),
  invalid: 'skip-instance',
  code: 'invalid_value',
});

/** conn_limit, the same in both scopes but for its example and words. */
const connLimitRow = (example: string, closedNote: string, doc: string) => ({
  key: 'conn_limit',
  parse: parseConnLimit,
  invalid: 'close-service' as const,
  absent: byDefault<number | undefined>(undefined),
  defaultDoc: '— (no limit)',
  example,
  closed: { value: CLOSED_CONN_LIMIT, note: closedNote },
  doc,
});

export const HTTP_SECTION = {
  kind: 'http',
  dir: KEY_PATHS.services,
  title: 'HTTP services, `<path>/services/<service>/`:',
  rows: [
    http('virtualHosts', {
      key: 'virtual_hosts',
      parse: parseHostList,
      invalid: 'reject-service',
      absent: byDefault<readonly HostPattern[]>([]),
      defaultDoc: '—',
      example: 'www.example.com, *.example.com',
      doc: 'comma-separated host names; `*.example.com` matches every subdomain of example.com (not example.com itself)',
    }),
    http('virtualPaths', {
      key: 'virtual_path',
      parse: parsePathList,
      invalid: 'reject-service',
      absent: byDefault<readonly string[]>([]),
      defaultDoc: '—',
      example: '/api,/v1',
      doc: 'comma-separated path prefixes; stripped before forwarding',
    }),
    http('keepVirtualPath', {
      key: 'keep_virtual_path',
      parse: parseBoolean,
      invalid: 'use-default',
      absent: byDefault(false),
      defaultDoc: '`false`',
      example: 'true',
      doc: '`true` to forward the path unchanged',
    }),
    http('balance', {
      key: 'balance',
      parse: parseBalance,
      invalid: 'use-default',
      absent: byDefault('roundrobin'),
      defaultDoc: '`roundrobin`',
      example: 'leastconn',
      doc: '`roundrobin`, `static-rr`, `leastconn`, `first`, `source`, `uri`, `random`, `url_param <p>`, `hdr(<h>)`',
    }),
    http('customSettings', {
      key: 'custom_settings',
      parse: parseSettingLines,
      invalid: 'reject-service',
      absent: byDefault<readonly string[]>([]),
      defaultDoc: '—',
      example: 'timeout server 2m',
      doc: "extra HAProxy lines for the service's backend, one per line; e.g. `*.foo.com` to `foo.com`: `acl wildcard hdr_reg(host) ^\\w*\\.foo.com` and `http-request redirect code 301 location http://foo.com%[capture.req.uri] if wildcard` (the older `redirect ... location` sends its location literally)",
    }),
    http('healthCheckUri', {
      key: 'health_check_uri',
      parse: parseHealthCheckUri,
      invalid: 'use-default',
      absent: byDefault(undefined),
      defaultDoc: 'TCP connect check',
      example: '/health',
      doc: '`option httpchk GET <uri>`: 2xx/3xx means healthy',
    }),
    http('healthCheckPort', {
      key: 'health_check_port',
      parse: parsePort,
      invalid: 'use-default',
      absent: byDefault(undefined),
      defaultDoc: "the instance's port",
      example: '8081',
      doc: 'port the health checks go to',
    }),
    http('cookie', {
      key: 'cookie',
      parse: parseCookie,
      invalid: 'use-default',
      absent: byDefault(undefined),
      defaultDoc: 'no stickiness',
      example: 'cookie JSESSIONID prefix nocache',
      doc: "empty: sticky sessions with the load balancer's cookie `KONTENA_SERVERID`; otherwise a full HAProxy `cookie` line, e.g. `cookie JSESSIONID prefix nocache`",
    }),
    http('basicAuth', {
      key: 'basic_auth_secrets',
      parse: parseBasicAuthSecrets,
      invalid: 'close-service',
      absent: byDefault(undefined),
      defaultDoc: '— (open)',
      example: 'user admin insecure-password s3cret',
      closed: { value: { users: [] }, note: 'the service is closed (401 to every request) until this is fixed' },
      doc: 'HTTP basic auth: one `user <name> insecure-password <password>` or `user <name> password <hash>` per line, the hash a SHA-512, SHA-256 or MD5 crypt hash (`openssl passwd -6`) or a bcrypt hash (`$2a$`, `$2b$`, `$2y$`, cost 04–31, as Kontena\'s docs show). bcrypt works, but HAProxy runs a bcrypt verification on every request with credentials, holding one of its threads meanwhile (about 50 ms at cost 10): edgelb logs `entry warning` once for such a service (its key, the users and costs, never the hashes) and `edgelb check` lists it; prefer `openssl passwd -6`. Requests without valid credentials get `401` with `WWW-Authenticate: Basic realm="<service>"`. A line that cannot be used is logged (`entry rejected` with the line number and what is wrong, never the secret) and the service answers `401` to everyone until it is fixed, rather than being left open. Passwords are printable ASCII without spaces, quotes, `#` or `\\`; `groups` are not supported',
    }),
    http('sslRedirect', {
      key: 'ssl_redirect',
      parse: parseBoolean,
      invalid: 'use-default',
      absent: byDefault(false),
      defaultDoc: '`false`',
      example: 'true',
      doc: '`true`: plain HTTP requests get a 301 to the same host, path and query over HTTPS (only while a certificate is served)',
    }),
    http('hstsMaxAge', {
      key: 'hsts',
      parse: parseMaxAge,
      invalid: 'use-default',
      absent: byDefault(undefined),
      defaultDoc: '—',
      example: '31536000',
      doc: '`Strict-Transport-Security: max-age=<n>` on HTTPS responses (`0` sends nothing)',
    }),
    http('acme', {
      key: 'acme',
      parse: parseBoolean,
      invalid: 'use-default',
      absent: byDefault(false),
      defaultDoc: '`false`',
      example: 'true',
      doc: "`true`: obtain a Let's Encrypt certificate for each exact host in `virtual_hosts` (needs `KONTENA_LB_ACME_EMAIL`)",
    }),
    // Access and header policies (issue 15): keyspace-access.ts.
    ...ACCESS_HTTP_ROWS,
    ...CLIENT_AUTH_ROWS,
    // Per-client limits (issue 15), counted in stick tables that survive reloads (limits.ts).
    http('rateLimit', {
      key: 'rate_limit',
      parse: parseRateLimit,
      invalid: 'use-default',
      absent: byDefault<RateLimit | undefined>(undefined),
      defaultDoc: '— (no limit)',
      example: '100/10s',
      doc: '`<requests>/<period>` per client address (1–1000000 requests, a period up to `1h` in `ms`, `s`, `m` or `h`): more in any such period get `429 Too Many Requests` with `Retry-After: <period in seconds>` (refused requests count too: a client that keeps sending too fast stays limited); the counters survive reloads (but for one less than 5 s after the previous one)',
    }),
    http(
      'connLimit',
      connLimitRow(
        '20',
        'the service is closed (403 to every request) until this is fixed',
        'the most requests one client address may have in progress at once (1–100000; a WebSocket holds one while open): more get `429 Too Many Requests`. An invalid value closes the service (403) rather than leaving it unlimited',
      ),
    ),
    instance({ doc: '`host:port` (or `[ipv6]:port`) of one running instance', defaultDoc: '—', example: '10.81.0.5:8080' }),
    // ---- issue 15 routing rows (HTTP): keyspace-routing.ts ----
    ...HTTP_ROUTING_ROWS,
  ],
} as const satisfies ServiceSection;

export const TCP_SECTION = {
  kind: 'tcp',
  dir: KEY_PATHS.tcpServices,
  title: 'TCP services, `<path>/tcp-services/<service>/`:',
  rows: [
    tcp('externalPort', {
      key: 'external_port',
      parse: parsePort,
      invalid: 'reject-service',
      defaultDoc: '— (required)',
      example: '5432',
      absent: { code: 'missing_external_port', reason: 'not served: no external_port set' },
      doc: 'the port the load balancer listens on for this service',
    }),
    instance({
      doc: '`host:port` of one running instance',
      defaultDoc: '— (at least one required)',
      example: '10.81.0.7:5432',
      none: { code: 'no_upstreams', reason: 'not served: no upstreams' },
    }),
    tcp('balance', {
      key: 'balance',
      parse: parseBalance,
      invalid: 'use-default',
      absent: byDefault('leastconn'),
      defaultDoc: '`leastconn`',
      example: 'roundrobin',
      doc: 'as above',
    }),
    tcp('customSettings', {
      key: 'custom_settings',
      parse: parseSettingLines,
      invalid: 'reject-service',
      absent: byDefault<readonly string[]>([]),
      defaultDoc: '—',
      example: 'timeout client 1h',
      doc: "extra HAProxy lines for the service's `listen` section",
    }),
    // Access policies (issue 15): keyspace-access.ts.
    ...ACCESS_TCP_ROWS,
    // Per-client limits (issue 15), counted in a stick table that survives reloads (limits.ts).
    tcp(
      'connLimit',
      connLimitRow(
        '10',
        'the service is closed (every connection refused) until this is fixed',
        'the most concurrent connections one client address may hold (1–100000): more are refused (closed at once). An invalid value closes the service rather than leaving it unlimited',
      ),
    ),
    // ---- issue 15 routing rows (TCP): keyspace-routing.ts ----
    ...TCP_ROUTING_ROWS,
  ],
} as const satisfies ServiceSection;

export type HttpFields = Omit<HttpService, 'kind' | 'name' | 'upstreams' | 'caFiles'>;
export type TcpFields = Omit<TcpService, 'kind' | 'name' | 'upstreams'>;
type Props<S> = S extends { readonly rows: readonly (infer R)[] } ? (R extends { readonly prop: infer P } ? P : never) : never;
/** Compiles only while every field types.ts declares has a row: the parser builds the services from the rows. */
export const EVERY_FIELD_HAS_A_ROW: [Exclude<keyof HttpFields, Props<typeof HTTP_SECTION>>, Exclude<keyof TcpFields, Props<typeof TCP_SECTION>>] extends [
  never,
  never,
]
  ? true
  : never = true;

/** Every per-service field key of either kind (metric labels name the field of an invalid value). */
export const SERVICE_FIELD_KEYS: ReadonlySet<string> = new Set([...fieldRowsOf(HTTP_SECTION), ...fieldRowsOf(TCP_SECTION)].map((row) => row.key));

/** `<service dir><service>/<field>` split into its parts; undefined for any other key (instances included). */
export function serviceFieldOf(key: string): { readonly kind: 'http' | 'tcp'; readonly service: string; readonly field: string } | undefined {
  const [top = '', service, field, ...rest] = key.split('/');
  const kind = serviceKindOfDir(top);
  return kind && service && field && rest.length === 0 ? { kind, service, field } : undefined;
}
