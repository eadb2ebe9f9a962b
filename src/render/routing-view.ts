import type { DesiredState, HttpService, TcpService } from '../model/types.js';

/**
 * Issue 15's parts of a service's view: its timeouts and retries (lines of the backend or listen
 * section: http-backend.hbs, tcp-service.hbs) and the protocol its servers speak (server-args.hbs).
 */

export function backendTuningView(service: HttpService | TcpService) {
  return {
    timeoutServer: service.timeoutServer,
    timeoutConnect: service.timeoutConnect,
    retryOn: service.kind === 'http' ? service.retryOn : undefined,
  };
}

/** What a server line says of the protocol to the instance (configuration manual 5.2). */
export interface ServerProtocolView {
  /** `proto h2`: HTTP/2 without TLS, prior knowledge (backend_protocol=h2). */
  readonly proto?: 'h2';
  /** `check-proto h2`: HAProxy's HTTP check then speaks HTTP/2 too (an h2c-only server answers nothing else). */
  readonly checkProto?: 'h2';
  /** `ssl verify <verify> [ca-file <file>]` (backend_protocol=https, with backend_verify=none or backend_ca; no file: the system's CAs). */
  readonly ssl?: { readonly verify: 'none' | 'required'; readonly caFile?: string };
}

export function serverProtocolView(service: HttpService | TcpService): ServerProtocolView {
  if (service.kind !== 'http') return {};
  if (service.backendProtocol === 'h2') return { proto: 'h2', ...(service.healthCheckUri !== undefined ? { checkProto: 'h2' as const } : {}) };
  if (service.backendProtocol !== 'https') return {};
  // backend_ca wins over backend_verify=none (parse.ts). Its bundle resolved (pipeline/ca-resolution.ts):
  // its file; missing: the service answers 503 to every request, and its checks verify against the
  // system's CAs rather than not at all. parse.ts leaves https without either key out.
  if (service.backendCa !== undefined) {
    const caFile = service.caFiles?.backendCa;
    return { ssl: { verify: 'required', ...(caFile !== undefined ? { caFile } : {}) } };
  }
  if (service.backendVerify === 'none') return { ssl: { verify: 'none' } };
  return {};
}

/** What a canary rule adds to its route's conditions (templates/haproxy.cfg.hbs). */
export type CanaryRuleView = { readonly header: { readonly name: string; readonly value: string } } | { readonly shareOf: string };

/**
 * The rules that send a route's requests to the canary service, placed just before the route's own
 * rule: the header override first, then the share. The share's percentage is not here but in the
 * canary map (service → percent), so changing it changes no config line: `set map`, no reload.
 * `order` is the route's; the trailing number keeps the canary rules ahead of it.
 */
export function canaryRulesOf(
  service: HttpService,
  conditions: readonly string[],
  order: readonly (number | string)[],
): { backend: string; conditions: readonly string[]; order: readonly (number | string)[]; canary: CanaryRuleView }[] {
  if (service.canary === undefined) return [];
  const backend = `http-${service.canary.service}`;
  return [
    ...(service.canaryHeader ? [{ backend, conditions, order: [...order, 0], canary: { header: service.canaryHeader } }] : []),
    { backend, conditions, order: [...order, 1], canary: { shareOf: service.name } },
  ];
}

/**
 * The canary map's entries (service → percent), as the map file and `set map` hold them
 * (templates/challenge-map.hbs writes the same `<key> <value>` lines). Only the services with a canary.
 */
export function canarySharesOf(state: DesiredState): ReadonlyMap<string, string> {
  return new Map(state.http.flatMap((service) => (service.canary ? [[service.name, String(service.canary.percent)] as const] : [])));
}
