import { parseAddresses } from '../model/address-list.js';
import { EntryError } from '../model/values.js';
import { ConfigError } from './config-error.js';
import { group, setting } from './setting.js';
import { boolean, checked, duration, parsedBy, port } from './values.js';

// The ports HAProxy listens on for clients, and what those listeners do for every service.

// HAProxy's monitor-uri takes it unquoted: a plain path, no spaces, quotes, '#' or query.
const HEALTH_URI = /^\/[A-Za-z0-9._~%!$&*+,;=:@/-]{0,255}$/;
// They go on one `src` ACL pattern list of the frontend, which HAProxy reads up to 64 words of.
const MAX_TRUSTED_PROXIES = 50;

/** KONTENA_LB_TRUSTED_PROXIES: the same address and CIDR syntax as ip_allow (model/address-list.ts). */
const trustedProxies = (env: string) =>
  parsedBy((raw) => {
    try {
      const list = parseAddresses(raw, env);
      if (list.length > MAX_TRUSTED_PROXIES) throw new ConfigError(`${env} lists more than ${MAX_TRUSTED_PROXIES} addresses`);
      return list;
    } catch (error) {
      if (error instanceof EntryError) throw new ConfigError(`${env}: ${error.message}`);
      throw error;
    }
  });

// It goes unquoted into `stats auth stats:<password>`: printable ASCII without spaces, quotes,
// '#' or backslashes, or it could end the line's token early or add syntax.
const STATS_PASSWORD = /^[!$%&()*+,\-./0-9:;<=>?@A-Z[\]^_`a-z{|}~]{1,256}$/;

export const listenerSettings = group(
  {
    httpPort: setting({ env: 'KONTENA_LB_HTTP_PORT', flag: 'http-port', default: '80', schema: port, help: 'HTTP listening port' }),
    httpsPort: setting({
      env: 'KONTENA_LB_HTTPS_PORT',
      flag: 'https-port',
      default: '443',
      schema: port,
      help: 'HTTPS listening port',
      doc: 'HTTPS listening port; nothing listens there until at least one certificate is valid',
    }),
    statsPort: setting({
      env: 'KONTENA_LB_STATS_PORT',
      flag: 'stats-port',
      default: '1000',
      schema: port,
      help: 'HAProxy statistics port',
      doc: "HAProxy's statistics page (`http://<lb>:<port>/`), served only while `STATS_PASSWORD` is set; reserved either way (no TCP service may take it)",
    }),
    /** Secret: never logged, and the message never repeats it. The statistics page is off while it is unset. Environment only. */
    statsPassword: setting({
      env: 'STATS_PASSWORD',
      verbatim: true,
      schema: () =>
        checked(
          (raw) => raw === '' || STATS_PASSWORD.test(raw),
          () => "STATS_PASSWORD may only contain printable ASCII without spaces, quotes, '#' or backslashes (at most 256 characters)",
        ).transform((raw) => (raw === '' ? undefined : raw)),
      help: 'turns on the statistics page behind HTTP basic auth, user stats',
      docDefault: '— (statistics page off)',
      doc: "turns on the statistics page behind HTTP basic auth, user `stats`; printable ASCII without spaces, quotes, `#` or `\\`. There is no default password (the Kontena load balancer's was `secret`); it never appears in logs",
    }),
    /** Answered 200 by HAProxy; undefined: routed like any path. */
    healthUri: setting({
      env: 'KONTENA_LB_HEALTH_URI',
      flag: 'health-uri',
      schema: (env) =>
        checked(
          (raw) => HEALTH_URI.test(raw),
          (raw) => `${env} must be a path like /health (letters, digits and URL path characters), got ${JSON.stringify(raw)}`,
        ),
      help: 'a path HAProxy answers with 200 while it is working (e.g. /health)',
      docDefault: '— (that path is routed like any other)',
      doc: 'a path such as `/health` that HAProxy itself answers with `200` while it is serving, for an external load balancer or monitor',
    }),
    /** PROXY protocol on the HTTP, HTTPS and TCP listeners. */
    acceptProxy: setting({
      env: 'KONTENA_LB_ACCEPT_PROXY',
      flag: 'accept-proxy',
      default: 'false',
      schema: boolean,
      help: 'expect the PROXY protocol on the HTTP, HTTPS and TCP listeners (true/false)',
      doc: '`true`: the HTTP, HTTPS and TCP-service listeners expect the PROXY protocol (v1 or v2) on every connection, so `X-Forwarded-For` and the logs carry the real client address when edgelb sits behind an L4 load balancer. Connections without the header are refused, health checks of that load balancer included; the statistics port is not affected',
    }),
    /** The proxies whose X-Forwarded-For names the client (ip_allow, ip_deny); none by default. */
    trustedProxies: setting({
      env: 'KONTENA_LB_TRUSTED_PROXIES',
      flag: 'trusted-proxies',
      schema: trustedProxies,
      help: 'comma-separated addresses/CIDRs of proxies whose X-Forwarded-For names the client',
      docDefault: "— (none: the connection's address is the client)",
      doc: 'comma-separated addresses and CIDRs (at most 50) of the proxies in front of edgelb: for a request on a connection from one of them, the client address that `ip_allow`/`ip_deny` check (and `X-Forwarded-For` to the instances) is the last address of the `X-Forwarded-For` it sent. Requests from anyone else keep their connection address, whatever `X-Forwarded-For` they send. HTTP only; behind an L4 load balancer use `KONTENA_LB_ACCEPT_PROXY` instead',
    }),
    /** HAProxy `timeout tunnel` (WebSockets and other upgraded connections). */
    tunnelTimeout: setting({
      env: 'KONTENA_LB_TUNNEL_TIMEOUT',
      flag: 'tunnel-timeout',
      default: '1h',
      schema: duration,
      help: 'how long an idle WebSocket (or other upgraded connection) stays open',
      doc: 'how long an idle WebSocket (or other upgraded connection) stays open; HTTP timeouts stop applying once a connection is upgraded. `30s`, `15m`, `1h`, `2d` or milliseconds',
    }),
  },
  (values) => {
    if (new Set([values.httpPort, values.httpsPort, values.statsPort]).size !== 3) {
      throw new ConfigError('KONTENA_LB_HTTP_PORT, KONTENA_LB_HTTPS_PORT and KONTENA_LB_STATS_PORT must be three different ports');
    }
    return values;
  },
);
