import { isIP } from 'node:net';
import { healthCheckOf, type HealthCheck } from '../model/health-check.js';
import type { DesiredState, HttpService, TcpService } from '../model/types.js';
import { serverProtocolView } from './routing-view.js';
import { httpBackendName, tcpProxyName } from './view.js';

/** One `server` of the rendered config, as data: what the state file and the first probe need. */
export interface ConfigServer {
  /** The proxy (backend or listen section) it belongs to. */
  readonly proxy: string;
  readonly name: string;
  /** An IP address as HAProxy writes it (IPv6 without brackets, in its shortest form). */
  readonly host: string;
  readonly port: number;
  /** `health_check_port` (the server line's `port`); undefined: the server's own port. */
  readonly checkPort: number | undefined;
  readonly check: HealthCheck;
  /** weights/<instance>: the weight a started-down row gives it (the file's weight). */
  readonly weight: number;
  /**
   * The server line says `ssl` (backend_protocol=https). The state file's srv_use_ssl column
   * overrides the line when HAProxy loads it, so a row must say the same (server-state.ts).
   */
  readonly ssl: boolean;
}

/** What the next worker starts with: states carried from the running one, and servers it starts down. */
export interface NextServerStates {
  /** Rows of `show servers state`, as HAProxy wrote them. */
  readonly carried: readonly string[];
  /** Servers with no state to carry: they start DOWN, and the controller probes them. */
  readonly down: readonly ConfigServer[];
}

/**
 * Every server the config for `state` holds whose address is an IP address. A server given by
 * host name is resolved by HAProxy when it loads the config (init-addr), so neither the state
 * file nor the controller's probe can name its address: it starts as HAProxy decides.
 * `defaultsSettings` (KONTENA_LB_CUSTOM_SETTINGS) may set the check of every service.
 */
export function configServers(state: DesiredState, defaultsSettings: readonly string[] = []): ConfigServer[] {
  const servers: ConfigServer[] = [];
  const add = (proxy: string, service: HttpService | TcpService) => {
    const check = healthCheckOf(service, defaultsSettings);
    const checkPort = service.kind === 'http' ? service.healthCheckPort : undefined;
    const ssl = serverProtocolView(service).ssl !== undefined;
    for (const upstream of service.upstreams) {
      const host = ipAddressOf(upstream.host);
      if (host === undefined) continue;
      servers.push({ proxy, name: upstream.name, host, port: upstream.port, checkPort, check, weight: upstream.weight, ssl });
    }
  };
  for (const service of state.http) add(httpBackendName(service.name), service);
  for (const service of state.tcp) add(tcpProxyName(service.name), service);
  return servers;
}

/**
 * The check of every proxy's servers. A service's check can only change with its section's
 * settings (or the defaults), which takes a reload: built at each start or reload, it holds for
 * the runtime changes in between.
 */
export function checksByProxy(state: DesiredState, defaultsSettings: readonly string[] = []): Map<string, HealthCheck> {
  const checks = new Map<string, HealthCheck>();
  for (const service of state.http) checks.set(httpBackendName(service.name), healthCheckOf(service, defaultsSettings));
  for (const service of state.tcp) checks.set(tcpProxyName(service.name), healthCheckOf(service, defaultsSettings));
  return checks;
}

/**
 * An upstream host as an IP address the way HAProxy prints it, or undefined for a host name.
 * The model keeps IPv6 in brackets (`[fd00::1]`, as the address is written); HAProxy's state
 * lines have it bare and shortest (RFC 5952), which the URL parser also gives.
 */
export function ipAddressOf(host: string): string | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const family = isIP(bare);
  if (family === 0) return undefined;
  if (family === 4) return bare;
  // HAProxy prints an IPv4-mapped address with its IPv4 part dotted; the URL parser would not.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  return mapped ? `::ffff:${mapped[1]}` : new URL(`http://[${bare}]/`).hostname.slice(1, -1);
}
