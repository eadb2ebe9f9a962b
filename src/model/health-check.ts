import type { HttpService, TcpService } from './types.js';

/**
 * The answer HAProxy's HTTP check accepts (`http-check expect status`, rendered from here), and
 * so the one the controller's own first probe accepts: one fact for both.
 */
export const HEALTHY_STATUS = { min: 200, max: 399 } as const;

/** The request line of the HTTP check: `option httpchk GET <uri>` sends HTTP/1.0 without headers. */
export const HTTP_CHECK = { method: 'GET', version: 'HTTP/1.0' } as const;

/**
 * How an instance of a service is checked, by HAProxy and (the first time) by the controller.
 * `port` is `health_check_port` when set; otherwise the instance's own port.
 */
export type HealthCheck =
  | { readonly kind: 'connect'; readonly port: number | undefined }
  | { readonly kind: 'http'; readonly path: string; readonly port: number | undefined }
  /** custom_settings define a check the controller cannot repeat exactly: HAProxy's checks alone decide. */
  | { readonly kind: 'haproxy-only'; readonly reason: string };

/** Check directives of a backend (configuration manual 2.6, 4.1 and 5.2) that custom_settings may set. */
const CUSTOM_CHECK =
  /^\s*(?:option\s+(?:httpchk|tcp-check|ssl-hello-chk|smtpchk|mysql-check|pgsql-check|redis-check|ldap-check|spop-check|external-check)|http-check|tcp-check|external-check|default-server\b.*(?:^|\s)(?:port|addr|check-ssl|check-send-proxy|agent-check)(?=\s|$))/;

const cache = new WeakMap<HttpService | TcpService, HealthCheck>();

/**
 * Services are immutable: the check is worked out once per service object. `defaultsSettings`
 * (KONTENA_LB_CUSTOM_SETTINGS, the `defaults` section) can set the check of every service.
 */
export function healthCheckOf(service: HttpService | TcpService, defaultsSettings: readonly string[] = []): HealthCheck {
  const fromDefaults = customCheckIn(defaultsSettings);
  if (fromDefaults !== undefined) return { kind: 'haproxy-only', reason: `KONTENA_LB_CUSTOM_SETTINGS set the health check (${fromDefaults})` };
  let check = cache.get(service);
  if (check === undefined) cache.set(service, (check = checkOf(service)));
  return check;
}

/** The first check directive among config lines (its first two words), if any. */
function customCheckIn(lines: readonly string[]): string | undefined {
  const line = lines.find((l) => CUSTOM_CHECK.test(l));
  return line?.trim().split(/\s+/).slice(0, 2).join(' ');
}

function checkOf(service: HttpService | TcpService): HealthCheck {
  const custom = customCheckIn(service.customSettings);
  if (custom !== undefined) return { kind: 'haproxy-only', reason: `custom_settings set the health check (${custom})` };
  if (service.kind === 'tcp') return { kind: 'connect', port: undefined };
  // The controller's first probe speaks HTTP/1 in clear: an h2 or TLS instance answers HAProxy's check only.
  if (service.healthCheckUri !== undefined && service.backendProtocol !== 'http') {
    return { kind: 'haproxy-only', reason: `backend_protocol ${service.backendProtocol}: the HTTP check is HAProxy's alone` };
  }
  if (service.healthCheckUri !== undefined) return { kind: 'http', path: service.healthCheckUri, port: service.healthCheckPort };
  return { kind: 'connect', port: service.healthCheckPort };
}
