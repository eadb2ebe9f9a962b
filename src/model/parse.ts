import { HTTP_SECTION, KEY_PATHS, serviceKindOfDir, TCP_SECTION } from './keyspace.js';
import { keyOf } from './keyspace-rows.js';
import { compare, readService, sectionReader, type RawService } from './parse-service.js';
import type { DesiredState, Entries, HttpService, ParseResult, Rejection, TcpService } from './types.js';

export { compare } from './parse-service.js';

export interface ParseOptions {
  /** Ports the load balancer itself listens on; a TCP service may not claim them. */
  readonly reservedPorts: readonly number[];
  readonly maxServices?: number;
}

interface GroupedService extends RawService {
  readonly fields: Map<string, string>;
  readonly upstreams: Map<string, string>;
  readonly options: Map<string, Map<string, string>>;
}

const DEFAULT_MAX_SERVICES = 20_000;
const EXTERNAL_PORT = keyOf(TCP_SECTION, 'externalPort');
const BACKEND_VERIFY = keyOf(HTTP_SECTION, 'backendVerify');
const CANARY = keyOf(HTTP_SECTION, 'canary');
const HTTP = sectionReader(HTTP_SECTION);
const TCP = sectionReader(TCP_SECTION);
/** The per-instance directories of each kind: `upstreams` and the instance options' (`weights`). */
const OPTION_DIRS = { http: new Set(HTTP.options.map((row) => row.dir)), tcp: new Set(TCP.options.map((row) => row.dir)) };

/**
 * Turns the raw etcd entries of one load balancer into a validated desired state.
 * Pure: the same entries always give the same result, sorted by name, and every
 * entry that is left out is listed in `rejected` with its key and the reason.
 * Each service's keys are read through the key table (keyspace.ts, parse-service.ts); the
 * rules across services (the service limit, TCP port conflicts) are here.
 */
export function parseEntries(entries: Entries, options: ParseOptions): ParseResult {
  const rejected: Rejection[] = [];
  const groups = groupByService(entries, rejected);
  const maxServices = options.maxServices ?? DEFAULT_MAX_SERVICES;

  const http: HttpService[] = [];
  for (const raw of limit(groups.http, maxServices, HTTP_SECTION.dir, rejected)) {
    const service = readService(HTTP, raw, rejected);
    if (service && backendTlsAllowed(service, rejected)) http.push(service);
  }

  canariesServed(http, rejected);

  const tcp: TcpService[] = [];
  const claimedPorts = new Map<number, string>(options.reservedPorts.map((p) => [p, 'the load balancer itself']));
  for (const raw of limit(groups.tcp, maxServices, TCP_SECTION.dir, rejected)) {
    const service = readService(TCP, raw, rejected);
    if (!service) continue;
    const owner = claimedPorts.get(service.externalPort);
    if (owner !== undefined) {
      rejected.push({
        key: `${TCP_SECTION.dir}${raw.name}/${EXTERNAL_PORT}`,
        code: 'port_conflict',
        reason: `port ${service.externalPort} is already used by ${owner}`,
        service: raw.name,
      });
      continue;
    }
    claimedPorts.set(service.externalPort, `tcp service ${service.name}`);
    tcp.push(service);
  }

  const state: DesiredState = deepFreeze({ http, tcp });
  return Object.freeze({ state, rejected: Object.freeze(rejected) });
}

function groupByService(entries: Entries, rejected: Rejection[]) {
  const http = new Map<string, GroupedService>();
  const tcp = new Map<string, GroupedService>();
  for (const [key, value] of [...entries].sort(([a], [b]) => compare(a, b))) {
    const [section = '', service, field, instance, ...rest] = key.split('/');
    const kind = serviceKindOfDir(section);
    if (!kind) continue; // other subtrees (certs, acme) belong to other sources
    const perInstance = field === KEY_PATHS.upstreams || OPTION_DIRS[kind].has(field ?? '');
    if (!service || !field || rest.length > 0 || perInstance !== (instance !== undefined)) {
      rejected.push({ key, code: 'key_layout', reason: 'unexpected key layout' });
      continue;
    }
    const target = kind === 'http' ? http : tcp;
    let raw = target.get(service);
    if (!raw) {
      raw = { name: service, fields: new Map(), upstreams: new Map(), options: new Map() };
      target.set(service, raw);
    }
    if (instance === undefined) raw.fields.set(field, value);
    else if (field === KEY_PATHS.upstreams) raw.upstreams.set(instance, value);
    else raw.options.set(field, (raw.options.get(field) ?? new Map()).set(instance, value));
  }
  // By name, not by key: `services/web-next/...` sorts before `services/web/...` ('-' < '/'), and
  // the state's lists must be sorted by name (state-changes.ts finds services by binary search).
  const byName = (a: GroupedService, b: GroupedService) => compare(a.name, b.name);
  return { http: [...http.values()].sort(byName), tcp: [...tcp.values()].sort(byName) };
}

/**
 * TLS to the instances is verified against backend_ca, or stated unverified with
 * backend_verify=none: `https` with neither leaves the service out. With both, backend_ca wins
 * (and the ignored key is reported).
 */
function backendTlsAllowed(service: HttpService, rejected: Rejection[]): boolean {
  const key = (prop: string) => `${HTTP_SECTION.dir}${service.name}/${prop}`;
  if (service.backendProtocol !== 'https') return true;
  if (service.backendCa !== undefined) {
    if (service.backendVerify === 'none')
      rejected.push({ key: key(BACKEND_VERIFY), code: 'invalid_value', reason: 'ignored: backend_ca is set, the instances are verified against it' });
    return true;
  }
  if (service.backendVerify === 'none') return true;
  rejected.push({
    key: key(BACKEND_VERIFY),
    code: 'unverified_backend_tls',
    reason: 'not served: backend_protocol https needs backend_ca (verified) or backend_verify=none (stated unverified)',
    service: service.name,
  });
  return false;
}

/**
 * A canary names another HTTP service that is served (not this one): otherwise its requests would
 * go to a backend that does not exist. Such a service is served without its canary.
 */
function canariesServed(http: HttpService[], rejected: Rejection[]): void {
  const names = new Set(http.map((service) => service.name));
  const checked = new Set(http.filter(hasClientAuth).map((service) => service.name));
  for (const [i, service] of http.entries()) {
    const target = service.canary?.service;
    const notAllowed =
      target === undefined
        ? undefined
        : hasAccessControl(service)
          ? // The canary's routing rules pick the other backend in the frontend: its requests would never
            // run this backend's basic auth, IP lists or limits (nor its closed state).
            "a canary's requests would skip this service's basic_auth_secrets, ip_allow, ip_deny, rate_limit, conn_limit and client certificate check"
          : checked.has(target)
            ? // The target checks client certificates per TLS server name of its own hosts; this service's
              // hosts were checked otherwise (or not at all), and the target's backend cannot tell.
              `${target} checks client certificates for its own host names; this service's requests were not checked against its CA`
            : undefined;
    if (notAllowed !== undefined) {
      rejected.push({ key: `${HTTP_SECTION.dir}${service.name}/${CANARY}`, code: 'canary_not_allowed', reason: `${notAllowed}; served without a canary` });
      http[i] = { ...service, canary: undefined };
      continue;
    }
    if (target === undefined || (target !== service.name && names.has(target))) continue;
    rejected.push({
      key: `${HTTP_SECTION.dir}${service.name}/${CANARY}`,
      code: 'unknown_canary',
      reason: `${target === service.name ? 'a service cannot be its own canary' : `no HTTP service ${target} is served`}; served without a canary`,
    });
    http[i] = { ...service, canary: undefined };
  }
}

function hasAccessControl(service: HttpService): boolean {
  return (
    hasClientAuth(service) || [service.basicAuth, service.ipAllow, service.ipDeny, service.rateLimit, service.connLimit].some((value) => value !== undefined)
  );
}

function hasClientAuth(service: HttpService): boolean {
  return [service.clientCa, service.clientVerify, service.clientCrl].some((value) => value !== undefined);
}

function limit(services: GroupedService[], max: number, dir: string, rejected: Rejection[]): GroupedService[] {
  for (const extra of services.slice(max)) {
    rejected.push({ key: `${dir}${extra.name}`, code: 'too_many_services', reason: `more than ${max} services`, service: extra.name });
  }
  return services.slice(0, max);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
