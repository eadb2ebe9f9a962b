import { describe, expect, it } from 'vitest';
import { parseAndRender, testRenderSettings } from '../support/render-check.js';
import { foreignLines, templateLinePatterns } from '../support/template-lines.js';

// Entries built to smuggle HAProxy directives into the edge: each is rejected with a reason, or
// rendered inert. Either way the config holds only lines the templates write.

const patterns = templateLinePatterns();
const settings = testRenderSettings({ tls: true });
const good = { 'services/good/virtual_hosts': 'good.test', 'services/good/upstreams/one': '127.0.0.1:8080' };
const INJECTED = 'use_backend http-evil if TRUE';

interface Case {
  readonly what: string;
  readonly entries: Record<string, string>;
  /** The key reported, and the reason; absent: accepted and inert. */
  readonly rejected?: { key: string; reason: RegExp };
  readonly maxServices?: number;
}

const web = (field: string, value: string): Record<string, string> => ({
  'services/web/upstreams/one': '127.0.0.1:8081',
  'services/web/virtual_hosts': 'web.test',
  [`services/web/${field}`]: value,
});

const CASES: Case[] = [
  {
    what: 'newline in virtual_hosts',
    entries: web('virtual_hosts', `web.test\n    ${INJECTED}`),
    rejected: { key: 'services/web/virtual_hosts', reason: /line break or control/ },
  },
  {
    what: 'carriage return in virtual_hosts',
    entries: web('virtual_hosts', `web.test\r    ${INJECTED}`),
    rejected: { key: 'services/web/virtual_hosts', reason: /line break or control/ },
  },
  { what: "'#' in a host", entries: web('virtual_hosts', 'web.test#x'), rejected: { key: 'services/web/virtual_hosts', reason: /not a valid host name/ } },
  {
    what: 'quote in a host',
    entries: web('virtual_hosts', 'web.test" if TRUE "'),
    rejected: { key: 'services/web/virtual_hosts', reason: /not a valid host name/ },
  },
  {
    what: 'backslash in a host',
    entries: web('virtual_hosts', 'web\\.test'),
    rejected: { key: 'services/web/virtual_hosts', reason: /not a valid host name/ },
  },
  {
    what: 'space inside a host name',
    entries: web('virtual_hosts', 'web.test if TRUE'),
    rejected: { key: 'services/web/virtual_hosts', reason: /not a valid host name/ },
  },
  { what: 'NUL byte in a host', entries: web('virtual_hosts', 'web.test\u0000evil'), rejected: { key: 'services/web/virtual_hosts', reason: /control/ } },
  { what: 'other control bytes', entries: web('virtual_hosts', 'web.test\u001b[31m'), rejected: { key: 'services/web/virtual_hosts', reason: /control/ } },
  {
    what: 'a 100 KB value',
    entries: web('virtual_hosts', 'a.test,'.repeat(15_000)),
    rejected: { key: 'services/web/virtual_hosts', reason: /larger than 65536 bytes/ },
  },
  {
    what: 'a host label longer than 63',
    entries: web('virtual_hosts', `${'a'.repeat(64)}.test`),
    rejected: { key: 'services/web/virtual_hosts', reason: /RFC 1123/ },
  },
  {
    what: 'a host name longer than 253',
    entries: web('virtual_hosts', Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.')),
    rejected: { key: 'services/web/virtual_hosts', reason: /not a valid host name/ },
  },
  {
    what: 'more than 100 hosts',
    entries: web('virtual_hosts', Array.from({ length: 101 }, (_, i) => `h${i}.test`).join(',')),
    rejected: { key: 'services/web/virtual_hosts', reason: /more than 100 hosts/ },
  },
  {
    what: 'unicode look-alike host (Cyrillic e)',
    entries: web('virtual_hosts', 'w\u0435b.test'),
    rejected: { key: 'services/web/virtual_hosts', reason: /RFC 1123/ },
  },
  { what: 'fullwidth host', entries: web('virtual_hosts', '\uff57\uff45\uff42.test'), rejected: { key: 'services/web/virtual_hosts', reason: /RFC 1123/ } },
  { what: 'unicode line separator', entries: web('virtual_hosts', 'web.test\u2028evil'), rejected: { key: 'services/web/virtual_hosts', reason: /RFC 1123/ } },
  { what: 'path with a space', entries: web('virtual_path', '/a b'), rejected: { key: 'services/web/virtual_path', reason: /URL path characters/ } },
  { what: "path with '#'", entries: web('virtual_path', '/a#b'), rejected: { key: 'services/web/virtual_path', reason: /URL path characters/ } },
  { what: 'path with a quote', entries: web('virtual_path', '/a"b'), rejected: { key: 'services/web/virtual_path', reason: /URL path characters/ } },
  { what: 'path with a backslash', entries: web('virtual_path', '/a\\b'), rejected: { key: 'services/web/virtual_path', reason: /URL path characters/ } },
  {
    what: 'path with a newline',
    entries: web('virtual_path', `/a\n    ${INJECTED}`),
    rejected: { key: 'services/web/virtual_path', reason: /line break or control/ },
  },
  { what: 'regex characters in a path are inert', entries: web('virtual_path', '/a.b$*+;=:@!~%41') },
  {
    what: 'service named like a template block',
    entries: { 'services/{{#each}}/virtual_hosts': 'x.test' },
    rejected: { key: 'services/{{#each}}', reason: /may only contain/ },
  },
  {
    what: 'service named {{this}}',
    entries: { 'services/{{this}}/virtual_hosts': 'x.test' },
    rejected: { key: 'services/{{this}}', reason: /may only contain/ },
  },
  { what: 'service named "each" is just a name', entries: { 'services/each/virtual_hosts': 'x.test', 'services/each/upstreams/this': '127.0.0.1:1' } },
  {
    what: 'service named "global" stays inside its backend',
    entries: { 'services/global/virtual_hosts': 'x.test', 'services/global/upstreams/else': '127.0.0.1:1' },
  },
  {
    what: 'service name with a newline',
    entries: { [`services/web\n    ${INJECTED}/virtual_hosts`]: 'x.test' },
    rejected: { key: `services/web\n    ${INJECTED}`, reason: /may only contain/ },
  },
  {
    what: 'service name with a space',
    entries: { 'services/web evil/virtual_hosts': 'x.test' },
    rejected: { key: 'services/web evil', reason: /may only contain/ },
  },
  {
    what: 'service name longer than 63',
    entries: { [`services/${'s'.repeat(64)}/virtual_hosts`]: 'x.test' },
    rejected: { key: `services/${'s'.repeat(64)}`, reason: /longer than 63/ },
  },
  {
    what: 'instance name with a space',
    entries: web('upstreams/one two', '127.0.0.1:1'),
    rejected: { key: 'services/web/upstreams/one two', reason: /may only contain/ },
  },
  {
    what: 'upstream with extra words',
    entries: web('upstreams/two', '127.0.0.1:80 backup'),
    rejected: { key: 'services/web/upstreams/two', reason: /not host:port|is not a number/ },
  },
  {
    what: 'upstream with a newline',
    entries: web('upstreams/two', `127.0.0.1:80\n    ${INJECTED}`),
    rejected: { key: 'services/web/upstreams/two', reason: /not host:port|is not a number/ },
  },
  {
    what: 'upstream host with a quote',
    entries: web('upstreams/two', 'a"b:80'),
    rejected: { key: 'services/web/upstreams/two', reason: /not a valid host name/ },
  },
  {
    what: 'balance with a directive',
    entries: web('balance', `roundrobin\n    ${INJECTED}`),
    rejected: { key: 'services/web/balance', reason: /not a supported algorithm/ },
  },
  { what: 'balance with a comment', entries: web('balance', 'roundrobin # x'), rejected: { key: 'services/web/balance', reason: /not a supported algorithm/ } },
  {
    what: 'cookie with a directive',
    entries: web('cookie', 'cookie X insert\n    acl x always_true'),
    rejected: { key: 'services/web/cookie', reason: /line break or control/ },
  },
  {
    what: 'cookie with a quote',
    entries: web('cookie', 'cookie X "insert"'),
    rejected: { key: 'services/web/cookie', reason: /must be empty or a line like/ },
  },
  {
    what: 'health_check_uri with a space',
    entries: web('health_check_uri', '/health HTTP/1.1\\r\\nHost: x'),
    rejected: { key: 'services/web/health_check_uri', reason: /without spaces or quotes/ },
  },
  { what: 'hsts with extra words', entries: web('hsts', '31536000; includeSubDomains'), rejected: { key: 'services/web/hsts', reason: /max-age in seconds/ } },
  { what: 'keep_virtual_path not a boolean', entries: web('keep_virtual_path', 'true\n') },
  {
    what: 'custom_settings opening a section',
    entries: web('custom_settings', 'timeout server 5s\nbackend evil'),
    rejected: { key: 'services/web/custom_settings', reason: /may not open a new section/ },
  },
  {
    what: 'custom_settings with a NUL byte',
    entries: web('custom_settings', 'timeout server 5s\u0000'),
    rejected: { key: 'services/web/custom_settings', reason: /control character/ },
  },
  {
    what: 'basic_auth_secrets with a directive',
    entries: web('basic_auth_secrets', `user a insecure-password pw\nbackend evil`),
    rejected: { key: 'services/web/basic_auth_secrets', reason: /./ },
  },
  // ip_allow, ip_deny: an unusable list closes the service (403 to everyone) instead of leaving it open.
  ...['ip_allow', 'ip_deny'].flatMap((key) => [
    { what: `${key} with a directive`, entries: web(key, `10.0.0.1\n    ${INJECTED}`), rejected: { key: `services/web/${key}`, reason: /control.*closed/ } },
    { what: `${key} with a condition`, entries: web(key, '10.0.0.1 if TRUE'), rejected: { key: `services/web/${key}`, reason: /not an IPv4.*closed/ } },
    { what: `${key} with a comment`, entries: web(key, '10.0.0.1#x'), rejected: { key: `services/web/${key}`, reason: /not an IPv4/ } },
    { what: `${key} with a sample expression`, entries: web(key, '%[src]'), rejected: { key: `services/web/${key}`, reason: /not an IPv4/ } },
    { what: `${key} with an IPv6 zone`, entries: web(key, 'fe80::1%eth0'), rejected: { key: `services/web/${key}`, reason: /not an IPv4/ } },
    { what: `${key} with a host name`, entries: web(key, 'evil.example.com'), rejected: { key: `services/web/${key}`, reason: /not an IPv4/ } },
    { what: `${key} empty`, entries: web(key, ' , '), rejected: { key: `services/web/${key}`, reason: /lists no address/ } },
    {
      what: `tcp ${key} with a directive`,
      entries: {
        'tcp-services/db/external_port': '9000',
        'tcp-services/db/upstreams/one': '127.0.0.1:5432',
        [`tcp-services/db/${key}`]: `10.0.0.1\nbackend evil`,
      },
      rejected: { key: `tcp-services/db/${key}`, reason: /control.*refused/ },
    },
  ]),
  // request_headers, response_headers: the service is served without them.
  ...['request_headers', 'response_headers'].flatMap((key) => [
    { what: `${key} with a directive`, entries: web(key, `set X-A b\n    ${INJECTED}`), rejected: { key: `services/web/${key}`, reason: /line 2 is not/ } },
    { what: `${key} with a CR`, entries: web(key, `set X-A b\r    ${INJECTED}`), rejected: { key: `services/web/${key}`, reason: /control/ } },
    { what: `${key} closing the quote`, entries: web(key, "set X-A b' if TRUE '"), rejected: { key: `services/web/${key}`, reason: /without "'"/ } },
    { what: `${key} with a backslash`, entries: web(key, 'set X-A b\\'), rejected: { key: `services/web/${key}`, reason: /without "'" or/ } },
    {
      what: `${key} with a name holding a condition`,
      entries: web(key, 'del X-A if TRUE'),
      rejected: { key: `services/web/${key}`, reason: /del takes a header name only/ },
    },
    { what: `${key} with a comment in the name`, entries: web(key, 'set X#A b'), rejected: { key: `services/web/${key}`, reason: /header name/ } },
    { what: `${key} with a sample expression is sent literally`, entries: web(key, 'set X-A %[src] #x "y" ${HOME}') },
  ]),
  // cors_origins, cors_methods, cors_headers, compression: the service is served without them.
  {
    what: 'cors_origins with a directive',
    entries: web('cors_origins', `https://a.test\n    ${INJECTED}`),
    rejected: { key: 'services/web/cors_origins', reason: /control/ },
  },
  {
    what: 'cors_origins with a condition',
    entries: web('cors_origins', 'https://a.test if TRUE'),
    rejected: { key: 'services/web/cors_origins', reason: /not an origin/ },
  },
  {
    what: 'cors_origins with a sample expression',
    entries: web('cors_origins', 'https://%[src]'),
    rejected: { key: 'services/web/cors_origins', reason: /not an origin/ },
  },
  {
    what: 'cors_origins with a quote',
    entries: web('cors_origins', 'https://a.test"'),
    rejected: { key: 'services/web/cors_origins', reason: /not an origin/ },
  },
  {
    what: 'cors_methods with a condition',
    entries: { ...web('cors_origins', '*'), 'services/web/cors_methods': 'GET if TRUE' },
    rejected: { key: 'services/web/cors_methods', reason: /is not one of/ },
  },
  {
    what: 'cors_headers with a comment',
    entries: { ...web('cors_origins', '*'), 'services/web/cors_headers': 'X-A #x' },
    rejected: { key: 'services/web/cors_headers', reason: /not a header name/ },
  },
  {
    what: 'cors_headers with a sample expression',
    entries: { ...web('cors_origins', '*'), 'services/web/cors_headers': '%[src]' },
    rejected: { key: 'services/web/cors_headers', reason: /not a header name/ },
  },
  {
    what: 'compression with a directive',
    entries: web('compression', `true\n    ${INJECTED}`),
    rejected: { key: 'services/web/compression', reason: /not true or false/ },
  },
  // Per-client limits (issue 15): only digits and a unit reach the template.
  {
    what: 'rate_limit with a rule after it',
    entries: web('rate_limit', `10/1s }\n    ${INJECTED}`),
    rejected: { key: 'services/web/rate_limit', reason: /<requests>\/<period>/ },
  },
  {
    what: 'rate_limit with a space',
    entries: web('rate_limit', '10/1s if TRUE'),
    rejected: { key: 'services/web/rate_limit', reason: /<requests>\/<period>/ },
  },
  { what: 'rate_limit of no requests', entries: web('rate_limit', '0/1s'), rejected: { key: 'services/web/rate_limit', reason: /1 to 1000000 requests/ } },
  { what: 'rate_limit over the most requests', entries: web('rate_limit', '1000001/1s'), rejected: { key: 'services/web/rate_limit', reason: /1 to 1000000/ } },
  { what: 'rate_limit of a zero period', entries: web('rate_limit', '10/0s'), rejected: { key: 'services/web/rate_limit', reason: /positive and at most 1h/ } },
  { what: 'rate_limit of a period over an hour', entries: web('rate_limit', '10/61m'), rejected: { key: 'services/web/rate_limit', reason: /at most 1h/ } },
  {
    what: 'rate_limit with a negative count',
    entries: web('rate_limit', '-1/1s'),
    rejected: { key: 'services/web/rate_limit', reason: /<requests>\/<period>/ },
  },
  { what: 'rate_limit in days', entries: web('rate_limit', '10/1d'), rejected: { key: 'services/web/rate_limit', reason: /<requests>\/<period>/ } },
  {
    what: 'conn_limit with a condition',
    entries: web('conn_limit', '5 } || TRUE'),
    rejected: { key: 'services/web/conn_limit', reason: /whole number from 1 to 100000.*closed/ },
  },
  { what: 'conn_limit of zero', entries: web('conn_limit', '0'), rejected: { key: 'services/web/conn_limit', reason: /whole number/ } },
  { what: 'conn_limit over the most', entries: web('conn_limit', '100001'), rejected: { key: 'services/web/conn_limit', reason: /whole number/ } },
  { what: 'conn_limit as a fraction', entries: web('conn_limit', '1.5'), rejected: { key: 'services/web/conn_limit', reason: /whole number/ } },
  {
    what: 'tcp conn_limit with a newline',
    entries: { 'tcp-services/db/external_port': '9000', 'tcp-services/db/upstreams/one': '127.0.0.1:5432', 'tcp-services/db/conn_limit': `5\n${INJECTED}` },
    rejected: { key: 'tcp-services/db/conn_limit', reason: /whole number.*refused/ },
  },
  {
    what: 'tcp external_port with a comment',
    entries: { 'tcp-services/db/external_port': '9000 # x', 'tcp-services/db/upstreams/one': '127.0.0.1:5432' },
    rejected: { key: 'tcp-services/db/external_port', reason: /not a number/ },
  },
  {
    what: 'a key nested too deep',
    entries: { 'services/web/upstreams/one/two': '127.0.0.1:1' },
    rejected: { key: 'services/web/upstreams/one/two', reason: /unexpected key layout/ },
  },
  {
    what: 'more services than the limit',
    entries: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`services/s${i}/virtual_hosts`, `s${i}.test`])),
    maxServices: 3,
    rejected: { key: 'services/s4', reason: /more than 3 services/ },
  },
];

// ---- issue 15 routing keys (weights, timeouts, retries, backend protocol, canary) ----
const weight = (value: string, dir = 'services/web'): Record<string, string> => ({ ...web('virtual_path', '/w'), [`${dir}/weights/one`]: value });
const ROUTING_CASES: Case[] = [
  { what: 'weight with a directive', entries: weight(`5\n    ${INJECTED}`), rejected: { key: 'services/web/weights/one', reason: /0 to 256/ } },
  { what: 'weight with extra words', entries: weight('5 backup'), rejected: { key: 'services/web/weights/one', reason: /0 to 256/ } },
  { what: 'weight negative', entries: weight('-1'), rejected: { key: 'services/web/weights/one', reason: /0 to 256/ } },
  { what: 'weight over 256', entries: weight('257'), rejected: { key: 'services/web/weights/one', reason: /0 to 256/ } },
  { what: 'weight as a percentage', entries: weight('50%'), rejected: { key: 'services/web/weights/one', reason: /0 to 256/ } },
  { what: 'weight in hex', entries: weight('0x10'), rejected: { key: 'services/web/weights/one', reason: /0 to 256/ } },
  {
    what: 'tcp weight with a NUL byte',
    entries: { 'tcp-services/db/external_port': '9000', 'tcp-services/db/upstreams/one': '127.0.0.1:5432', 'tcp-services/db/weights/one': '1\u0000' },
    rejected: { key: 'tcp-services/db/weights/one', reason: /0 to 256/ },
  },
  {
    what: 'a weights directory nested too deep',
    entries: weight('5', 'services/web/weights/x'),
    rejected: { key: 'services/web/weights/x/weights/one', reason: /unexpected key layout/ },
  },
  {
    what: 'timeout_server with a directive',
    entries: web('timeout_server', `5s\n    ${INJECTED}`),
    rejected: { key: 'services/web/timeout_server', reason: /duration/ },
  },
  { what: 'timeout_server without a unit', entries: web('timeout_server', '30'), rejected: { key: 'services/web/timeout_server', reason: /duration/ } },
  { what: 'timeout_server over a day', entries: web('timeout_server', '25h'), rejected: { key: 'services/web/timeout_server', reason: /duration/ } },
  { what: 'timeout_server of zero', entries: web('timeout_server', '0s'), rejected: { key: 'services/web/timeout_server', reason: /duration/ } },
  { what: 'timeout_server in days', entries: web('timeout_server', '1d'), rejected: { key: 'services/web/timeout_server', reason: /duration/ } },
  {
    what: 'timeout_connect with a sample fetch',
    entries: web('timeout_connect', '%[src]'),
    rejected: { key: 'services/web/timeout_connect', reason: /duration/ },
  },
  { what: 'timeout_connect with a space', entries: web('timeout_connect', '5 s'), rejected: { key: 'services/web/timeout_connect', reason: /duration/ } },
  {
    what: 'tcp timeout_server with a quote',
    entries: { 'tcp-services/db/external_port': '9000', 'tcp-services/db/upstreams/one': '127.0.0.1:5432', 'tcp-services/db/timeout_server': '5s"' },
    rejected: { key: 'tcp-services/db/timeout_server', reason: /duration/ },
  },
  {
    what: 'retry_on with a directive',
    entries: web('retry_on', `conn-failure\n    ${INJECTED}`),
    rejected: { key: 'services/web/retry_on', reason: /unknown/ },
  },
  { what: 'retry_on with a condition', entries: web('retry_on', 'conn-failure if TRUE'), rejected: { key: 'services/web/retry_on', reason: /unknown/ } },
  { what: 'retry_on with a status HAProxy does not take', entries: web('retry_on', '599'), rejected: { key: 'services/web/retry_on', reason: /unknown/ } },
  { what: 'retry_on none with others', entries: web('retry_on', 'none, 503'), rejected: { key: 'services/web/retry_on', reason: /cannot be combined/ } },
  { what: 'retry_on empty', entries: web('retry_on', ' , '), rejected: { key: 'services/web/retry_on', reason: /empty/ } },
  {
    what: 'retry_on on a TCP service (an HTTP-only key)',
    entries: { 'tcp-services/db/external_port': '9000', 'tcp-services/db/upstreams/one': '127.0.0.1:5432', 'tcp-services/db/retry_on': '503' },
    rejected: { key: 'tcp-services/db/retry_on', reason: /unknown setting/ },
  },
  {
    what: 'backend_protocol with a directive',
    entries: web('backend_protocol', `h2\n    ${INJECTED}`),
    rejected: { key: 'services/web/backend_protocol', reason: /not one of/ },
  },
  {
    what: 'backend_protocol with server options',
    entries: web('backend_protocol', 'h2 ssl verify none'),
    rejected: { key: 'services/web/backend_protocol', reason: /not one of/ },
  },
  { what: 'backend_protocol h2c', entries: web('backend_protocol', 'h2c'), rejected: { key: 'services/web/backend_protocol', reason: /not one of/ } },
  {
    what: 'backend_verify required (not available)',
    entries: web('backend_verify', 'required'),
    rejected: { key: 'services/web/backend_verify', reason: /only "none"/ },
  },
  {
    what: 'backend_verify with a ca-file',
    entries: web('backend_verify', 'none ca-file /etc/passwd'),
    rejected: { key: 'services/web/backend_verify', reason: /only "none"/ },
  },
  {
    what: 'https without backend_verify (never served unverified)',
    entries: web('backend_protocol', 'https'),
    rejected: { key: 'services/web/backend_verify', reason: /needs backend_ca \(verified\) or backend_verify=none/ },
  },
  {
    what: 'client_ca with crt-list options',
    entries: web('client_ca', 'x] verify none [ca-file /etc/passwd'),
    rejected: { key: 'services/web/client_ca', reason: /not a CA bundle name/ },
  },
  { what: 'client_ca as a path', entries: web('client_ca', '../../etc/ssl/ca'), rejected: { key: 'services/web/client_ca', reason: /not a CA bundle name/ } },
  {
    what: 'client_crl with a directive',
    entries: web('client_crl', `x\n    ${INJECTED}`),
    rejected: { key: 'services/web/client_crl', reason: /not a CA bundle name/ },
  },
  { what: 'client_verify none', entries: web('client_verify', 'none'), rejected: { key: 'services/web/client_verify', reason: /"required" or "optional"/ } },
  {
    what: 'backend_ca with server options',
    entries: { ...web('backend_protocol', 'https'), 'services/web/backend_ca': 'x verify none' },
    rejected: { key: 'services/web/backend_ca', reason: /not a CA bundle name/ },
  },
  {
    what: 'canary with a directive',
    entries: web('canary', `good:10\n    ${INJECTED}`),
    rejected: { key: 'services/web/canary', reason: /<service>:<percent>/ },
  },
  { what: 'canary naming a backend', entries: web('canary', 'http-evil:10'), rejected: { key: 'services/web/canary', reason: /no HTTP service http-evil/ } },
  { what: 'canary over 100%', entries: web('canary', 'good:101'), rejected: { key: 'services/web/canary', reason: /0 to 100/ } },
  { what: 'canary with a condition', entries: web('canary', 'good:10 if TRUE'), rejected: { key: 'services/web/canary', reason: /<service>:<percent>/ } },
  { what: 'canary to itself', entries: web('canary', 'web:10'), rejected: { key: 'services/web/canary', reason: /its own canary/ } },
  {
    what: 'canary_header with a sample fetch',
    entries: { ...web('canary', 'good:10'), 'services/web/canary_header': 'X-A:%[src]' },
    rejected: { key: 'services/web/canary_header', reason: /Header-Name/ },
  },
  {
    what: 'canary_header closing the condition',
    entries: { ...web('canary', 'good:10'), 'services/web/canary_header': 'X-A:1 } || { always_true' },
    rejected: { key: 'services/web/canary_header', reason: /Header-Name/ },
  },
  {
    what: 'canary_header name with a parenthesis',
    entries: { ...web('canary', 'good:10'), 'services/web/canary_header': 'X-A),src(:1' },
    rejected: { key: 'services/web/canary_header', reason: /Header-Name/ },
  },
  // Accepted: the canary's rules are template lines like any other.
  { what: 'a valid canary with its header', entries: { ...web('canary', 'good:10'), 'services/web/canary_header': 'X-Canary:1' } },
];
// ---- end of issue 15 routing keys ----

describe('hostile entries', () => {
  it.each([...CASES, ...ROUTING_CASES])('$what', ({ entries, rejected, maxServices }) => {
    const { parsed, config } = parseAndRender(new Map(Object.entries({ ...good, ...entries })), settings, maxServices);
    if (rejected) {
      const found = parsed.rejected.find((r) => r.key === rejected.key);
      expect(found, `rejections: ${JSON.stringify(parsed.rejected)}`).toBeDefined();
      expect(found!.reason).toMatch(rejected.reason);
    } else {
      expect(parsed.rejected.filter((r) => !r.reason.includes('using the default'))).toEqual([]);
    }
    // Whatever happened to the hostile entry, the good service is served...
    expect(parsed.state.http.some((s) => s.name === 'good')).toBe(true);
    // ...and the config holds no line the templates did not write (custom_settings aside: none here are accepted).
    const foreign = foreignLines(config, patterns).filter((l) => !/^\s+timeout server 5s$/.test(l));
    expect(foreign).toEqual([]);
    expect(config).not.toContain(INJECTED);
    expect(config).not.toContain('backend evil');
  });

  it('a rejection reason never repeats a basic-auth password', () => {
    const { parsed } = parseAndRender(
      new Map(Object.entries({ ...good, ...web('basic_auth_secrets', 'user a insecure-password s3cret-pw extra words') })),
      settings,
    );
    expect(JSON.stringify(parsed.rejected)).not.toContain('s3cret-pw');
  });
});
