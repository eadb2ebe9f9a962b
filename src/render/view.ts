import type { BasicAuthUser } from '../model/basic-auth.js';
import { backendTuningView, canaryRulesOf, serverProtocolView, type CanaryRuleView, type ServerProtocolView } from './routing-view.js';
import type { DesiredState, HttpService, TcpService, Upstream } from '../model/types.js';
import { compare } from '../model/parse.js';
import { HEALTHY_STATUS, HTTP_CHECK } from '../model/health-check.js';
import { aclLineChunks } from './acl-lines.js';
import { accessView, httpPoliciesView } from './policy-view.js';
import { limitsViewOf } from './limits-view.js';
import type { NextServerStates } from './servers.js';
import type { RenderSettings } from './render-settings.js';

interface AclView {
  readonly name: string;
  readonly exactHosts?: readonly string[];
  readonly hostSuffixes?: readonly string[];
  readonly pathRoot?: boolean;
  readonly path?: string;
}

interface RuleView {
  readonly backend: string;
  readonly conditions: readonly string[];
  /** A canary rule (routing-view.ts canaryRulesOf): the header that selects it, or the service whose share does. */
  readonly canary?: CanaryRuleView;
}

/**
 * The data handed to templates/haproxy.cfg.hbs: everything but the services' own sections,
 * which http-backend.hbs and tcp-service.hbs render one by one. Built from arguments only.
 */
export interface HeadView {
  readonly settings: RenderSettings;
  readonly acls: readonly AclView[];
  readonly rules: readonly RuleView[];
  /** Whether any route has a canary: the frontend then draws one number per request for the shares. */
  readonly canaries: boolean;
  /** One userlist per service with basic auth users (a closed service needs none). */
  readonly userlists: readonly { readonly name: string; readonly users: readonly BasicAuthUser[] }[];
}

export type HttpBackendView = ReturnType<typeof httpBackendView>;
export type TcpServiceView = ReturnType<typeof tcpServiceView>;

/** The whole view at once: for tests and tools that want to look at it. */
export interface ConfigView extends HeadView {
  readonly httpBackends: readonly HttpBackendView[];
  readonly tcpServices: readonly TcpServiceView[];
}

/** HAProxy proxy names: the prefixes keep HTTP and TCP services apart even when they share a name. */
export const httpBackendName = (service: string) => `http-${service}`;
export const tcpProxyName = (service: string) => `tcp-${service}`;
export const userlistName = (service: string) => `auth-${service}`;

export function buildView(state: DesiredState, settings: RenderSettings): ConfigView {
  return { ...buildHeadView(state, settings), httpBackends: state.http.map(httpBackendView), tcpServices: state.tcp.map(tcpServiceView) };
}

/** The part of the head one HTTP service contributes: its ACLs, its routing rules (with their order) and its users. */
export interface ServiceHeadView {
  readonly acls: readonly AclView[];
  readonly rules: readonly (RuleView & { readonly order: readonly (number | string)[] })[];
  readonly userlist?: { readonly name: string; readonly users: readonly BasicAuthUser[] };
}

/**
 * What one service puts in the head. The head view is built only from these, so the renderer can
 * tell whether a changed service changes the head by comparing them: no hand-kept list of fields.
 */
export function serviceHeadView(service: HttpService): ServiceHeadView {
  const acls: AclView[] = [];
  const rules: (RuleView & { order: readonly (number | string)[] })[] = [];
  const backend = httpBackendName(service.name);
  const exact = service.virtualHosts.filter((h) => !h.wildcard).map((h) => h.name);
  const suffixes = service.virtualHosts.filter((h) => h.wildcard).map((h) => `.${h.name}`);
  const hostAcls: { name: string; specificity: number }[] = [];
  if (exact.length > 0) {
    for (const part of aclLineChunks(exact)) acls.push({ name: `host_${service.name}`, exactHosts: part });
    hostAcls.push({ name: `host_${service.name}`, specificity: 0 });
  }
  if (suffixes.length > 0) {
    for (const part of aclLineChunks(suffixes)) acls.push({ name: `hostwild_${service.name}`, hostSuffixes: part });
    hostAcls.push({ name: `hostwild_${service.name}`, specificity: 1 });
  }
  const pathAcls = service.virtualPaths.map((path, i) => {
    const name = `path${i}_${service.name}`;
    acls.push(path === '/' ? { name, pathRoot: true } : { name, path });
    return { name, length: path === '/' ? 0 : path.length };
  });

  // Order of use_backend rules is the routing precedence (HAProxy takes the first match):
  // host+path, then host only, then path only; within a group exact hosts before wildcards,
  // longer path prefixes before shorter ones, then the alphabetically first service.
  // Each route is preceded by its canary rules, if any (routing-view.ts).
  const route = (conditions: string[], order: (number | string)[]) => rules.push(...canaryRulesOf(service, conditions, order), { backend, conditions, order });
  if (hostAcls.length > 0 && pathAcls.length > 0) {
    for (const h of hostAcls) {
      for (const p of pathAcls) route([h.name, p.name], [0, h.specificity, -p.length, service.name]);
    }
  } else if (hostAcls.length > 0) {
    for (const h of hostAcls) route([h.name], [1, h.specificity, 0, service.name]);
  } else {
    for (const p of pathAcls) route([p.name], [2, 0, -p.length, service.name]);
  }
  const users = service.basicAuth?.users ?? [];
  return { acls, rules, ...(users.length > 0 ? { userlist: { name: userlistName(service.name), users } } : {}) };
}

export function buildHeadView(state: DesiredState, settings: RenderSettings): HeadView {
  const parts = state.http.map(serviceHeadView);
  const rules = parts.flatMap((p) => p.rules).sort((a, b) => compareTuples(a.order, b.order));
  return {
    settings,
    acls: parts.flatMap((p) => p.acls),
    rules: rules.map(({ backend, conditions, canary }) => ({ backend, conditions, ...(canary ? { canary } : {}) })),
    canaries: parts.some((p) => p.rules.some((r) => r.canary)),
    userlists: parts.flatMap((p) => (p.userlist ? [p.userlist] : [])),
  };
}

export function httpBackendView(service: HttpService) {
  const strip = service.keepVirtualPath ? [] : service.virtualPaths.filter((p) => p !== '/').sort((a, b) => b.length - a.length || compare(a, b));
  return {
    name: httpBackendName(service.name),
    service: service.name,
    balance: service.balance,
    ...httpPoliciesView(service),
    stripPrefixes: strip.length > 0 ? strip.map(regexLiteral).join('|') : undefined,
    sslRedirect: service.sslRedirect,
    hstsMaxAge: service.hstsMaxAge,
    healthCheckUri: service.healthCheckUri,
    healthCheckPort: service.healthCheckPort,
    httpCheck: HTTP_CHECK_VIEW,
    cookieLine: service.cookie,
    cookieDefault: service.cookie === '',
    ...backendTuningView(service),
    customSettings: service.customSettings,
    limits: limitsViewOf(service),
    auth: service.basicAuth && {
      realm: service.name,
      userlist: userlistName(service.name),
      closed: service.basicAuth.users.length === 0,
    },
    servers: service.upstreams.map((u) => serverViewOf(service, u)),
  };
}

export function tcpServiceView(service: TcpService) {
  return {
    name: tcpProxyName(service.name),
    service: service.name,
    port: service.externalPort,
    balance: service.balance,
    access: accessView(service),
    ...backendTuningView(service),
    customSettings: service.customSettings,
    limits: limitsViewOf(service),
    servers: service.upstreams.map((u) => serverViewOf(service, u)),
  };
}

/** The HTTP check's request and expectation, shared with the controller's own first probe (model/health-check.ts). */
const HTTP_CHECK_VIEW = {
  method: HTTP_CHECK.method,
  version: HTTP_CHECK.version,
  healthyStatus: `${HEALTHY_STATUS.min}-${HEALTHY_STATUS.max}`,
} as const;

/** One server of a service, as templates/server-args.hbs and the server line read it. */
export interface ServerView {
  readonly name: string;
  readonly address: string;
  /** health_check_port: where HAProxy's checks go (`port`); absent: the server's own port. */
  readonly checkPort?: number;
  /** The server's cookie value when the service is cookie-sticky. */
  readonly cookie?: string;
  /** weights/<instance>: 0–256. */
  readonly weight: number;
  /** backend_protocol: routing-view.ts. */
  readonly protocol: ServerProtocolView;
}

export function serverViewOf(service: HttpService | TcpService, upstream: Upstream): ServerView {
  const http = service.kind === 'http' ? service : undefined;
  return {
    name: upstream.name,
    address: `${upstream.host}:${upstream.port}`,
    weight: upstream.weight,
    protocol: serverProtocolView(service),
    ...(http?.healthCheckPort !== undefined ? { checkPort: http.healthCheckPort } : {}),
    ...(http?.cookie !== undefined ? { cookie: upstream.name } : {}),
  };
}

/** The rows of a server-state file: a started-down server names its check port (0: its own port). */
export function serverStateView(states: NextServerStates) {
  return {
    carried: states.carried,
    down: states.down.map((s) => ({
      proxy: s.proxy,
      name: s.name,
      host: s.host,
      port: s.port,
      checkPort: s.checkPort ?? 0,
      weight: s.weight,
      useSsl: s.ssl ? 1 : 0,
    })),
  };
}

/**
 * A path prefix as a regex that matches only itself. Characters with a regex meaning go in a
 * bracket class rather than behind a backslash, because HAProxy's config tokenizer would eat
 * the backslash first.
 */
export function regexLiteral(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, (c) => `[${c}]`);
}

function compareTuples(a: readonly (number | string)[], b: readonly (number | string)[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return compare(String(x), String(y));
  }
  return 0;
}
