import { CLOSED_LIST, parseAddressList, type AddressList } from './address-list.js';
import { parseHeaderRules, type HeaderRule } from './header-rules.js';
import { byDefault, fieldRow } from './keyspace-rows.js';

/**
 * The key table's rows for who may reach a service and what its requests and responses carry
 * (issue 15, "access and header policies"): spread into HTTP_SECTION and TCP_SECTION
 * (keyspace.ts), kept here so that table stays readable.
 */

const ADDRESSES_DOC =
  'comma-separated IPv4/IPv6 addresses and CIDRs (`10.0.0.0/8, 192.0.2.7, 2001:db8::/32`), at most 500. The client address is the real one behind the PROXY protocol (`KONTENA_LB_ACCEPT_PROXY`), and taken from `X-Forwarded-For` only when the connection comes from `KONTENA_LB_TRUSTED_PROXIES`';
const HEADER_LINES_DOC =
  "`set <Name> <value>` (replaces every such header), `add <Name> <value>` (one more), `del <Name>` (removes them all), at most 50 lines. Names are RFC 7230 tokens without `#`, `$`, `%` or `'`; values printable ASCII (spaces allowed) without `'` or `\\`, sent exactly as written (a `%` stays a `%`: no HAProxy sample expressions). `Content-Length`, `Transfer-Encoding`, `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer` and `Upgrade` are HAProxy's own. An invalid line is logged with the key and line number and the service is served without any of this key's changes";
const CLOSED_NOTE = 'the service is closed (403 to every request) until this is fixed';
const CLOSED_NOTE_TCP = 'the service is closed (every connection refused) until this is fixed';

export const ACCESS_HTTP_ROWS = [
  fieldRow('ipAllow', {
    scope: 'http',
    key: 'ip_allow',
    parse: parseAddressList,
    invalid: 'close-service',
    absent: byDefault<AddressList | undefined>(undefined),
    closed: { value: CLOSED_LIST, note: CLOSED_NOTE },
    defaultDoc: '— (every client)',
    example: '10.0.0.0/8, 192.0.2.7',
    doc: `only these clients reach the service, every other gets \`403\`: ${ADDRESSES_DOC}. A value that cannot be used (or is empty) closes the service (\`403\` to everyone) rather than leaving it open`,
  }),
  fieldRow('ipDeny', {
    scope: 'http',
    key: 'ip_deny',
    parse: parseAddressList,
    invalid: 'close-service',
    absent: byDefault<AddressList | undefined>(undefined),
    closed: { value: CLOSED_LIST, note: CLOSED_NOTE },
    defaultDoc: '— (nobody)',
    example: '192.0.2.0/24',
    doc: 'these clients get `403` (checked with `ip_allow`: a client must be allowed and not denied); the same list as `ip_allow`, and an unusable value closes the service in the same way',
  }),
  fieldRow('requestHeaders', {
    scope: 'http',
    key: 'request_headers',
    parse: parseHeaderRules,
    invalid: 'use-default',
    absent: byDefault<readonly HeaderRule[]>([]),
    defaultDoc: '—',
    example: 'set X-Env production\ndel X-Debug',
    doc: `changes to the requests the instances receive, one per line: ${HEADER_LINES_DOC}`,
  }),
  fieldRow('responseHeaders', {
    scope: 'http',
    key: 'response_headers',
    parse: parseHeaderRules,
    invalid: 'use-default',
    absent: byDefault<readonly HeaderRule[]>([]),
    defaultDoc: '—',
    example: 'set Cache-Control no-cache, no-store\nadd X-Frame-Options DENY\ndel Server',
    doc: "changes to the instances' responses, as `request_headers`",
  }),
] as const;

export const ACCESS_TCP_ROWS = [
  fieldRow('ipAllow', {
    scope: 'tcp',
    key: 'ip_allow',
    parse: parseAddressList,
    invalid: 'close-service',
    absent: byDefault<AddressList | undefined>(undefined),
    closed: { value: CLOSED_LIST, note: CLOSED_NOTE_TCP },
    defaultDoc: '— (every client)',
    example: '10.0.0.0/8',
    doc: 'as for HTTP services; the connection of any other client is closed at once, and an unusable value refuses every connection (`X-Forwarded-For` does not apply)',
  }),
  fieldRow('ipDeny', {
    scope: 'tcp',
    key: 'ip_deny',
    parse: parseAddressList,
    invalid: 'close-service',
    absent: byDefault<AddressList | undefined>(undefined),
    closed: { value: CLOSED_LIST, note: CLOSED_NOTE_TCP },
    defaultDoc: '— (nobody)',
    example: '192.0.2.0/24',
    doc: "these clients' connections are closed at once",
  }),
] as const;
