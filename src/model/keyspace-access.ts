import { CLOSED_LIST, parseAddressList, type AddressList } from './address-list.js';
import { parseCorsHeaders, parseCorsMethods, parseCorsOrigins, type CorsOrigins } from './cors.js';
import { parseHeaderRules, type HeaderRule } from './header-rules.js';
import { byDefault, fieldRow } from './keyspace-rows.js';
import { parseBoolean } from './values.js';

/**
 * The key table's rows for who may reach a service and what its requests and responses carry
 * (issue 15, "access and header policies"): spread into HTTP_SECTION and TCP_SECTION
 * (keyspace.ts), kept here so that table stays readable.
 */

const ADDRESSES_DOC =
  'comma-separated IPv4/IPv6 addresses and CIDRs (`10.0.0.0/8, 192.0.2.7, 2001:db8::/32`), at most 500. The client address is the real one behind the PROXY protocol (`KONTENA_LB_ACCEPT_PROXY`), and taken from `X-Forwarded-For` only when the connection comes from `KONTENA_LB_TRUSTED_PROXIES`';
const HEADER_LINES_DOC =
  "`set <Name> <value>` (replaces every such header), `add <Name> <value>` (one more), `del <Name>` (removes them all), at most 50 lines. Names are RFC 7230 tokens without `#`, `$`, `%` or `'`; values printable ASCII (spaces allowed) without `'` or `\\`, sent exactly as written (a `%` stays a `%`: no HAProxy sample expressions). `Content-Length`, `Transfer-Encoding`, `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer` and `Upgrade` are HAProxy's own, and `X-SSL-Client-*` (either spelling) edgelb's (client_ca). An invalid line is logged with the key and line number and the service is served without any of this key's changes";
const CLOSED_NOTE = 'the service is closed (403 to every request) until this is fixed';
const CLOSED_NOTE_TCP = 'the service is closed (every connection refused) until this is fixed';

/** An address-list row (ip_allow, ip_deny): the same parser, default and closed state in both scopes. */
const addressRow = <P extends 'ipAllow' | 'ipDeny'>(prop: P, scope: 'http' | 'tcp', row: { key: string; defaultDoc: string; example: string; doc: string }) =>
  fieldRow(prop, {
    scope,
    ...row,
    parse: parseAddressList,
    invalid: 'close-service',
    absent: byDefault<AddressList | undefined>(undefined),
    closed: { value: CLOSED_LIST, note: scope === 'http' ? CLOSED_NOTE : CLOSED_NOTE_TCP },
  });

export const ACCESS_HTTP_ROWS = [
  addressRow('ipAllow', 'http', {
    key: 'ip_allow',
    defaultDoc: '— (every client)',
    example: '10.0.0.0/8, 192.0.2.7',
    doc: `only these clients reach the service, every other gets \`403\`: ${ADDRESSES_DOC}. A value that cannot be used (or is empty) closes the service (\`403\` to everyone) rather than leaving it open`,
  }),
  addressRow('ipDeny', 'http', {
    key: 'ip_deny',
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
  fieldRow('corsOrigins', {
    scope: 'http',
    key: 'cors_origins',
    parse: parseCorsOrigins,
    invalid: 'use-default',
    absent: byDefault<CorsOrigins | undefined>(undefined),
    defaultDoc: '— (no CORS headers)',
    example: 'https://app.example.com, http://localhost:3000',
    doc: "CORS: `*` (any origin) or comma-separated origins (`https://app.example.com`, `http://localhost:3000`, at most 100). HAProxy answers a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) itself: `204` with `Access-Control-Allow-Origin` (the origin, or `*`), `-Methods`, `-Headers`, `Access-Control-Max-Age: 600`, or `403` for another origin; responses to an allowed origin carry `Access-Control-Allow-Origin` (replacing the instance's), and with a list `Vary: Origin`. No credentials (`Access-Control-Allow-Credentials`) are allowed",
  }),
  fieldRow('corsMethods', {
    scope: 'http',
    key: 'cors_methods',
    parse: parseCorsMethods,
    invalid: 'use-default',
    absent: byDefault<readonly string[]>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']),
    defaultDoc: '`GET,HEAD,POST,PUT,PATCH,DELETE`',
    example: 'GET,POST',
    doc: 'with `cors_origins`: the methods a preflight may allow, comma-separated, of `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE`, `OPTIONS`',
  }),
  fieldRow('corsHeaders', {
    scope: 'http',
    key: 'cors_headers',
    parse: parseCorsHeaders,
    invalid: 'use-default',
    absent: byDefault<readonly string[]>(['Content-Type', 'Authorization']),
    defaultDoc: '`Content-Type,Authorization`',
    example: 'Content-Type,X-Requested-With',
    doc: 'with `cors_origins`: the request headers a preflight may allow, comma-separated header names (at most 50)',
  }),
  fieldRow('compression', {
    scope: 'http',
    key: 'compression',
    parse: parseBoolean,
    invalid: 'use-default',
    absent: byDefault(false),
    defaultDoc: '`false`',
    example: 'true',
    doc: "`true`: HAProxy compresses responses of text types (`text/html`, `text/plain`, `text/css`, `text/javascript`, `application/javascript`, `application/json`, `application/xml`, `image/svg+xml`) with gzip or deflate when the client's `Accept-Encoding` asks for it; responses already compressed, and clients that do not ask, get them as the instance sent them",
  }),
] as const;

export const ACCESS_TCP_ROWS = [
  addressRow('ipAllow', 'tcp', {
    key: 'ip_allow',
    defaultDoc: '— (every client)',
    example: '10.0.0.0/8',
    doc: 'as for HTTP services; the connection of any other client is closed at once, and an unusable value refuses every connection (`X-Forwarded-For` does not apply)',
  }),
  addressRow('ipDeny', 'tcp', {
    key: 'ip_deny',
    defaultDoc: '— (nobody)',
    example: '192.0.2.0/24',
    doc: "these clients' connections are closed at once",
  }),
] as const;
