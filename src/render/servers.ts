import { isIP } from 'node:net';
import { healthCheckOf, type HealthCheck } from '../model/health-check.js';
import type { DesiredState, HttpService, TcpService } from '../model/types.js';
import { httpBackendName, tcpProxyName } from './view.js';

/** One `server` of the rendered config, as data: what the state file and the first probe need. */
export interface ConfigServer {
  /** The proxy (backend or listen section) it belongs to. */
  readonly proxy: string;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly check: HealthCheck;
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
 */
export function configServers(state: DesiredState): ConfigServer[] {
  const servers: ConfigServer[] = [];
  const add = (proxy: string, service: HttpService | TcpService) => {
    for (const upstream of service.upstreams) {
      if (isIP(upstream.host) === 0) continue;
      servers.push({ proxy, name: upstream.name, host: upstream.host, port: upstream.port, check: healthCheckOf(service) });
    }
  };
  for (const service of state.http) add(httpBackendName(service.name), service);
  for (const service of state.tcp) add(tcpProxyName(service.name), service);
  return servers;
}

/**
 * The check of every proxy's servers. A service's check can only change with its section's
 * settings, which takes a reload: built at each start or reload, it holds for the runtime
 * changes in between.
 */
export function checksByProxy(state: DesiredState): Map<string, HealthCheck> {
  const checks = new Map<string, HealthCheck>();
  for (const service of state.http) checks.set(httpBackendName(service.name), healthCheckOf(service));
  for (const service of state.tcp) checks.set(tcpProxyName(service.name), healthCheckOf(service));
  return checks;
}
