import {
  parseBackendProtocol,
  parseBackendVerify,
  parseCanary,
  parseCanaryHeader,
  parseDuration,
  parseRetryOn,
  parseWeight,
  type BackendProtocol,
  type Canary,
  type CanaryHeader,
} from './backend-values.js';
import { parseCaName } from './client-auth.js';
import { byDefault, fieldRow, type InstanceOptionRow } from './keyspace-rows.js';

/**
 * Issue 15's rows for weights, backend protocols, timeouts and retries: keyspace.ts spreads them
 * into its sections (kept apart so the table stays readable and each slice of the issue has its
 * own block). The README's words and the validators are here, the lines in the templates.
 */

/** `<service>/weights/<instance>`: the directory KEY_PATHS.weights names. */
export const WEIGHTS_DIR = 'weights';

/**
 * `weights/<instance>`: the server's `weight` (configuration manual 5.2), on its line and in
 * `add server`; a change alone is applied with `set server <b>/<s> weight` (management guide
 * 9.3), no reload. Relative: an instance gets weight/(sum of weights) of new requests.
 */
const weightRow = (): InstanceOptionRow<'weight', number> => ({
  key: `${WEIGHTS_DIR}/<instance>`,
  dir: WEIGHTS_DIR,
  scope: 'instance-option',
  prop: 'weight',
  parse: parseWeight,
  invalid: 'use-default',
  code: 'invalid_value',
  absent: byDefault(100),
  defaultDoc: '`100`',
  example: '50',
  doc: "the instance's share of new requests, 0–256, relative to the others' (`upstreams/<instance>`'s name); changed without a reload (with a static `balance` such as `static-rr`, `source`, `uri` or `hdr`, HAProxy takes only 0 or full weight at runtime, so a change there reloads); `0` sends it no new requests while it keeps its connections, except clients a `cookie` keeps on it",
});

/** `timeout server` and `timeout connect` of the service's proxy (configuration manual 4.2); a bad value: the defaults' (60s, 5s). */
const timeoutRows = (scope: 'http' | 'tcp') =>
  [
    fieldRow('timeoutServer', {
      scope,
      key: 'timeout_server',
      parse: parseDuration,
      invalid: 'use-default',
      absent: byDefault<string | undefined>(undefined),
      defaultDoc: '`60s`',
      example: '2m',
      doc: 'how long the load balancer waits for an instance to send (a response, for HTTP: `504` after it); digits and `ms`, `s`, `m` or `h`, at most `24h`',
    }),
    fieldRow('timeoutConnect', {
      scope,
      key: 'timeout_connect',
      parse: parseDuration,
      invalid: 'use-default',
      absent: byDefault<string | undefined>(undefined),
      defaultDoc: '`5s`',
      example: '500ms',
      doc: 'how long a connection to an instance may take to open before it is retried (`retries 2`; the last retry goes to another instance: `option redispatch`); as `timeout_server`',
    }),
  ] as const;

export const HTTP_ROUTING_ROWS = [
  weightRow(),
  ...timeoutRows('http'),
  fieldRow('retryOn', {
    scope: 'http',
    key: 'retry_on',
    parse: parseRetryOn,
    invalid: 'use-default',
    absent: byDefault<readonly string[] | undefined>(undefined),
    defaultDoc: '`conn-failure`',
    example: 'conn-failure, empty-response, 503',
    doc: "when a request is sent again (up to 2 more times; the last of them to another instance when there is one): HAProxy's `retry-on` conditions, comma- or space-separated: `conn-failure`, `empty-response`, `junk-response`, `response-timeout`, `0rtt-rejected`, `all-retryable-errors`, the statuses `401`, `403`, `404`, `408`, `425`, `500`, `501`, `502`, `503`, `504`, or `none`. Only idempotent-safe requests should be retried on a response: HAProxy retries any method on these, and never a request whose body it could not keep",
  }),
  fieldRow('backendProtocol', {
    scope: 'http',
    key: 'backend_protocol',
    parse: parseBackendProtocol,
    // Left out rather than served over plain HTTP/1.1: a typo of `https` must not send the traffic in clear.
    invalid: 'reject-service',
    absent: byDefault<BackendProtocol>('http'),
    defaultDoc: '`http`',
    example: 'h2',
    doc: 'how the load balancer speaks to the instances: `http` (HTTP/1.1), `h2` (HTTP/2 without TLS, prior knowledge: gRPC servers), `https` (HTTP/1.1 over TLS; needs `backend_ca` or `backend_verify=none`)',
  }),
  fieldRow('backendVerify', {
    scope: 'http',
    key: 'backend_verify',
    parse: parseBackendVerify,
    invalid: 'reject-service',
    absent: byDefault<'none' | undefined>(undefined),
    defaultDoc: '— (`https` needs `backend_ca`)',
    example: 'none',
    doc: "`none`: with `backend_protocol=https`, the instances' certificates are not verified (encrypted, but open to a man in the middle on the instances' network). A service with `https` and neither this key nor `backend_ca` is left out rather than served unverified; with `backend_ca` set this key is ignored (logged)",
  }),
  fieldRow('backendCa', {
    scope: 'http',
    key: 'backend_ca',
    parse: parseCaName,
    invalid: 'reject-service',
    absent: byDefault<string | undefined>(undefined),
    defaultDoc: '—',
    example: 'internal-ca',
    doc: "with `backend_protocol=https`: the name of a CA bundle in `<path>/backend-cas/<name>` (or `backend-cas/<name>.pem` in `KONTENA_LB_CERTS_DIR`); each instance's certificate must chain to it (`ssl verify required ca-file`), else the instance fails its checks and requests get `503`. The instance's name is not checked (instances are addresses: no SNI is sent and no `verifyhost`), only that the CA issued it. A bundle that is missing or holds no CA certificate: `503` to every request until it is fixed",
  }),
  fieldRow('canary', {
    scope: 'http',
    key: 'canary',
    parse: parseCanary,
    invalid: 'use-default',
    absent: byDefault<Canary | undefined>(undefined),
    defaultDoc: '—',
    example: 'web-next:10',
    doc: "`<service>:<percent>`: that share of this service's requests (chosen at random per request) goes to another HTTP service instead, with that service's settings; a change of the percentage needs no reload. The other service must exist, else the service is served without a canary; it is refused on a service with `basic_auth_secrets`, `ip_allow`, `ip_deny`, `rate_limit`, `conn_limit` or `client_ca` (the canary's requests would skip them), and towards a service with `client_ca` (its check belongs to its own host names). The canary's requests get the other service's path stripping too. A change to a service with a canary makes edgelb parse every service again (milliseconds at hundreds of services, about a second at 10,000)",
  }),
  fieldRow('canaryHeader', {
    scope: 'http',
    key: 'canary_header',
    parse: parseCanaryHeader,
    invalid: 'use-default',
    absent: byDefault<CanaryHeader | undefined>(undefined),
    defaultDoc: '—',
    example: 'X-Canary:always',
    doc: '`<Header-Name>:<value>`: with `canary`, a request carrying this header with this exact value always goes to the canary',
  }),
] as const;

export const TCP_ROUTING_ROWS = [weightRow(), ...timeoutRows('tcp')] as const;
