import type { DesiredState, Entries, HttpService, ParseResult, Rejection, RejectionCode, TcpService, Upstream } from './types.js';
import {
  EntryError, parseBalance, parseBoolean, parseCookie, parseHealthCheckUri,
  parseHostList, parseMaxAge, parseName, parsePathList, parsePort, parseSettingLines, parseUpstream,
} from './values.js';
import { parseBasicAuthSecrets, type BasicAuth } from './basic-auth.js';

export interface ParseOptions {
  /** Ports the load balancer itself listens on; a TCP service may not claim them. */
  readonly reservedPorts: readonly number[];
  readonly maxServices?: number;
}

type Fields = Map<string, string>;
interface RawService {
  readonly name: string;
  readonly fields: Fields;
  readonly upstreams: Map<string, string>;
}

const HTTP_FIELDS = new Set([
  'virtual_hosts', 'virtual_path', 'keep_virtual_path', 'balance', 'custom_settings',
  'health_check_uri', 'health_check_port', 'cookie', 'basic_auth_secrets', 'ssl_redirect', 'hsts', 'acme',
]);
const TCP_FIELDS = new Set(['external_port', 'balance', 'custom_settings']);
const DEFAULT_MAX_SERVICES = 20_000;

/**
 * Turns the raw etcd entries of one load balancer into a validated desired state.
 * Pure: the same entries always give the same result, sorted by name, and every
 * entry that is left out is listed in `rejected` with its key and the reason.
 */
export function parseEntries(entries: Entries, options: ParseOptions): ParseResult {
  const rejected: Rejection[] = [];
  const groups = groupByService(entries, rejected);
  const maxServices = options.maxServices ?? DEFAULT_MAX_SERVICES;

  const http: HttpService[] = [];
  for (const raw of limit(groups.http, maxServices, 'services', rejected)) {
    const service = parseHttpService(raw, rejected);
    if (service) http.push(service);
  }

  const tcp: TcpService[] = [];
  const claimedPorts = new Map<number, string>(options.reservedPorts.map((p) => [p, 'the load balancer itself']));
  for (const raw of limit(groups.tcp, maxServices, 'tcp-services', rejected)) {
    const service = parseTcpService(raw, rejected);
    if (!service) continue;
    const owner = claimedPorts.get(service.externalPort);
    if (owner !== undefined) {
      rejected.push(serviceRejection(`tcp-services/${raw.name}/external_port`, raw.name, 'port_conflict',
        `port ${service.externalPort} is already used by ${owner}`));
      continue;
    }
    claimedPorts.set(service.externalPort, `tcp service ${service.name}`);
    tcp.push(service);
  }

  const state: DesiredState = deepFreeze({ http, tcp });
  return Object.freeze({ state, rejected: Object.freeze(rejected) });
}

function groupByService(entries: Entries, rejected: Rejection[]) {
  const http = new Map<string, RawService>();
  const tcp = new Map<string, RawService>();
  for (const [key, value] of [...entries].sort(([a], [b]) => compare(a, b))) {
    const parts = key.split('/');
    const [section, service, field, instance, ...rest] = parts;
    const target = section === 'services' ? http : section === 'tcp-services' ? tcp : undefined;
    if (!target) continue; // other subtrees (certs, acme) belong to other sources
    if (!service || !field || rest.length > 0 || (field === 'upstreams') !== (instance !== undefined)) {
      rejected.push({ key, code: 'key_layout', reason: 'unexpected key layout' });
      continue;
    }
    let raw = target.get(service);
    if (!raw) {
      raw = { name: service, fields: new Map(), upstreams: new Map() };
      target.set(service, raw);
    }
    if (instance !== undefined) raw.upstreams.set(instance, value);
    else raw.fields.set(field, value);
  }
  return { http: [...http.values()], tcp: [...tcp.values()] };
}

function parseHttpService(raw: RawService, rejected: Rejection[]): HttpService | undefined {
  const base = `services/${raw.name}`;
  const name = checkName(raw.name, base, rejected);
  if (name === undefined) return undefined;
  rejectUnknownFields(raw.fields, HTTP_FIELDS, base, rejected);

  // Keys that decide who may reach the service, or what it lets through, are all-or-nothing:
  // serving it without them could route other hosts' traffic to it or drop an access rule.
  let virtualHosts, virtualPaths, customSettings;
  try {
    virtualHosts = field(raw.fields, 'virtual_hosts', base, parseHostList) ?? [];
    virtualPaths = field(raw.fields, 'virtual_path', base, parsePathList) ?? [];
    customSettings = field(raw.fields, 'custom_settings', base, (v) => parseSettingLines(v, 'custom_settings')) ?? [];
  } catch (error) {
    if (!(error instanceof KeyError)) throw error;
    rejected.push(serviceRejection(error.key, name, 'invalid_value', error.message));
    return undefined;
  }

  return {
    kind: 'http',
    name,
    virtualHosts,
    virtualPaths,
    keepVirtualPath: optional(raw.fields, 'keep_virtual_path', base, parseBoolean, rejected) ?? false,
    balance: optional(raw.fields, 'balance', base, parseBalance, rejected) ?? 'roundrobin',
    customSettings,
    healthCheckUri: optional(raw.fields, 'health_check_uri', base, parseHealthCheckUri, rejected),
    healthCheckPort: optional(raw.fields, 'health_check_port', base, (v) => parsePort(v, 'health_check_port'), rejected),
    cookie: optional(raw.fields, 'cookie', base, parseCookie, rejected),
    basicAuth: basicAuthOf(raw.fields, base, rejected),
    sslRedirect: optional(raw.fields, 'ssl_redirect', base, parseBoolean, rejected) ?? false,
    hstsMaxAge: optional(raw.fields, 'hsts', base, parseMaxAge, rejected),
    acme: optional(raw.fields, 'acme', base, parseBoolean, rejected) ?? false,
    upstreams: parseUpstreams(raw, base, rejected),
  };
}

/**
 * A basic_auth_secrets value that cannot be used closes the service (401 to every request)
 * instead of leaving it out: left out, its host could fall through to another service's route
 * and be served with no password at all. The reason names the line, never the secret in it.
 */
function basicAuthOf(fields: Fields, base: string, rejected: Rejection[]): BasicAuth | undefined {
  try {
    return field(fields, 'basic_auth_secrets', base, parseBasicAuthSecrets);
  } catch (error) {
    if (!(error instanceof KeyError)) throw error;
    rejected.push({ key: error.key, code: 'invalid_value', reason: `${error.message}; the service is closed (401 to every request) until this is fixed` });
    return { users: [] };
  }
}

function parseTcpService(raw: RawService, rejected: Rejection[]): TcpService | undefined {
  const base = `tcp-services/${raw.name}`;
  const name = checkName(raw.name, base, rejected);
  if (name === undefined) return undefined;
  rejectUnknownFields(raw.fields, TCP_FIELDS, base, rejected);

  let externalPort, customSettings;
  try {
    externalPort = field(raw.fields, 'external_port', base, (v) => parsePort(v, 'external_port'));
    customSettings = field(raw.fields, 'custom_settings', base, (v) => parseSettingLines(v, 'custom_settings')) ?? [];
  } catch (error) {
    if (!(error instanceof KeyError)) throw error;
    rejected.push(serviceRejection(error.key, name, 'invalid_value', error.message));
    return undefined;
  }
  const upstreams = parseUpstreams(raw, base, rejected);
  // Kontena rule: a TCP service needs both a port and an instance; without them it is
  // not an error, just not ready yet, so it is reported as such rather than silently dropped.
  if (externalPort === undefined) {
    rejected.push(serviceRejection(`${base}/external_port`, name, 'missing_external_port', 'not served: no external_port set'));
    return undefined;
  }
  if (upstreams.length === 0) {
    rejected.push(serviceRejection(`${base}/upstreams`, name, 'no_upstreams', 'not served: no upstreams'));
    return undefined;
  }
  return {
    kind: 'tcp',
    name,
    externalPort,
    balance: optional(raw.fields, 'balance', base, parseBalance, rejected) ?? 'leastconn',
    customSettings,
    upstreams,
  };
}

function parseUpstreams(raw: RawService, base: string, rejected: Rejection[]): Upstream[] {
  const upstreams: Upstream[] = [];
  for (const [instance, value] of raw.upstreams) {
    const key = `${base}/upstreams/${instance}`;
    try {
      upstreams.push(parseUpstream(parseName(instance, 'instance'), value));
    } catch (error) {
      if (!(error instanceof EntryError)) throw error;
      rejected.push({ key, code: 'invalid_value', reason: error.message });
    }
  }
  return upstreams.sort((a, b) => compare(a.name, b.name));
}

class KeyError extends Error {
  constructor(readonly key: string, message: string) {
    super(message);
  }
}

/** A required-to-be-valid field: an invalid value rejects the whole service. */
function field<T>(fields: Fields, name: string, base: string, parse: (raw: string) => T): T | undefined {
  const raw = fields.get(name);
  if (raw === undefined) return undefined;
  try {
    return parse(raw);
  } catch (error) {
    if (error instanceof EntryError) throw new KeyError(`${base}/${name}`, error.message);
    throw error;
  }
}

/** A field whose invalid value is skipped (its default applies) while the service is still served. */
function optional<T>(fields: Fields, name: string, base: string, parse: (raw: string) => T, rejected: Rejection[]): T | undefined {
  try {
    return field(fields, name, base, parse);
  } catch (error) {
    if (!(error instanceof KeyError)) throw error;
    rejected.push({ key: error.key, code: 'invalid_value', reason: `${error.message}; using the default` });
    return undefined;
  }
}

function checkName(raw: string, base: string, rejected: Rejection[]): string | undefined {
  try {
    return parseName(raw, 'service');
  } catch (error) {
    if (!(error instanceof EntryError)) throw error;
    rejected.push({ key: base, code: 'invalid_name', reason: error.message });
    return undefined;
  }
}

function rejectUnknownFields(fields: Fields, known: ReadonlySet<string>, base: string, rejected: Rejection[]): void {
  for (const name of fields.keys()) {
    if (!known.has(name)) rejected.push({ key: `${base}/${name}`, code: 'unknown_setting', reason: 'unknown setting, ignored' });
  }
}

function limit(services: RawService[], max: number, section: string, rejected: Rejection[]): RawService[] {
  for (const extra of services.slice(max)) {
    rejected.push(serviceRejection(`${section}/${extra.name}`, extra.name, 'too_many_services', `more than ${max} services`));
  }
  return services.slice(0, max);
}

function serviceRejection(key: string, service: string, code: RejectionCode, reason: string): Rejection {
  return { key, code, reason, service };
}

/** Byte-order comparison, so the output never depends on the machine's locale. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

