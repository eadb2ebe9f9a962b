import path from 'node:path';
import { CLOSED_CA_NAME } from '../model/client-auth.js';
import { HTTP_SECTION } from '../model/keyspace.js';
import { keyOf } from '../model/keyspace-rows.js';
import { compare } from '../model/parse-service.js';
import { changedServices, findService, indexOfName, serviceKey } from '../model/state-changes.js';
import type { DesiredState, HttpService, Rejection, ServiceCaFiles } from '../model/types.js';
import { caStoreKey, type CaBundle, type CaKind, type CaStore } from '../tls/ca-bundles.js';
import { trustOf, type ClientAuthHost } from '../tls/client-auth-lines.js';

/**
 * The CA bundles services name (client_ca, client_crl, backend_ca), resolved against the bundles
 * read from etcd and the certificate directory. Pure. A client check that cannot be applied
 * closes the service (403): a missing or invalid bundle, client_verify or client_crl without
 * client_ca, no virtual_hosts (certificates are asked per TLS server name), or a host another
 * service already asks for a different check on. A missing backend_ca bundle gives 503.
 */

export interface CaResolution {
  /** The state with `caFiles` set on every service that names a bundle (the other services are the same objects). */
  readonly state: DesiredState;
  /** Bundles and services that could not be used: the store's, then the services'. */
  readonly rejected: readonly Rejection[];
  /** The bundles in use: written to `caDir` before HAProxy reads the config. */
  readonly files: readonly { readonly file: string; readonly pem: string }[];
  readonly clientAuth: readonly ClientAuthHost[];
}

const KEYS = {
  clientCa: keyOf(HTTP_SECTION, 'clientCa'),
  clientVerify: keyOf(HTTP_SECTION, 'clientVerify'),
  clientCrl: keyOf(HTTP_SECTION, 'clientCrl'),
  backendCa: keyOf(HTTP_SECTION, 'backendCa'),
};

/**
 * Per CA store (the same object while no bundle changed): the last parsed state resolved, and
 * its services that name a bundle. The next state's are found from the services that changed
 * (changedServices: the parse's record, else a walk comparing pointers), so an apply at 10,000
 * services does not read every service's fields again (about 3 ms) for a few that name bundles.
 */
const lastByStore = new WeakMap<CaStore, { state: DesiredState; caDir: string; naming: readonly HttpService[]; result: CaResolution }>();

export function resolveCaBundles(state: DesiredState, store: CaStore, caDir: string): CaResolution {
  const last = lastByStore.get(store);
  const previous = last?.caDir === caDir ? last : undefined;
  if (previous?.state === state) return previous.result;
  const naming = previous ? namingAfter(previous.state, previous.naming, state) : state.http.filter(namesBundle);
  // Nothing naming a bundle changed: the same rejections, files and lines; only the other services moved.
  const result =
    previous && naming === previous.naming
      ? { ...previous.result, state: withResolved(state, naming, previous.result.state) }
      : resolve(state, naming, store, caDir);
  lastByStore.set(store, { state, caDir, naming, result });
  return result;
}

function namesBundle(service: HttpService): boolean {
  const wantsBackend = service.backendCa !== undefined && service.backendProtocol === 'https';
  return wantsBackend || service.clientCa !== undefined || service.clientVerify !== undefined || service.clientCrl !== undefined;
}

/** The services of `after` that name a bundle, from those of `before` and what changed between them; `naming` itself when none of it changed. */
function namingAfter(before: DesiredState, naming: readonly HttpService[], after: DesiredState): readonly HttpService[] {
  const changed = changedServices(before, after);
  const kept = naming.filter((service) => !changed.has(serviceKey(service)));
  const added: HttpService[] = [];
  for (const key of changed) {
    const service = findService(after, key);
    if (service?.kind === 'http' && namesBundle(service)) added.push(service);
  }
  if (added.length === 0 && kept.length === naming.length) return naming;
  return [...kept, ...added].sort((a, b) => compare(a.name, b.name));
}

/** `state` with each of `naming` replaced by its resolved object from `resolved` (found by name); `state` itself when `naming` is empty. */
function withResolved(state: DesiredState, naming: readonly HttpService[], resolved: DesiredState): DesiredState {
  if (naming.length === 0) return state;
  const http = [...state.http];
  for (const service of naming) http[indexOfName(http, service.name)] = resolved.http[indexOfName(resolved.http, service.name)]!;
  return Object.freeze({ http: Object.freeze(http), tcp: state.tcp });
}

function resolve(state: DesiredState, naming: readonly HttpService[], store: CaStore, caDir: string): CaResolution {
  const rejected: Rejection[] = store.rejected.map((r) => ({ key: r.key, code: 'invalid_ca_bundle', reason: r.reason }));
  const used = new Map<string, { file: string; pem: string }>();
  const fileOf = (bundle: CaBundle) => {
    const file = path.join(caDir, bundle.fileName);
    used.set(file, { file, pem: bundle.pem });
    return file;
  };
  const lookup = (kind: CaKind, name: string | undefined) =>
    name === undefined || name === CLOSED_CA_NAME ? undefined : store.bundles.get(caStoreKey(kind, name));
  const hosts = new Map<string, ClientAuthHost & { service: string }>();
  const clientAuth: ClientAuthHost[] = [];

  const checks: { service: HttpService; files: ServiceCaFiles; snis?: readonly string[] }[] = naming.map((service) => {
    const wantsClient = service.clientCa !== undefined || service.clientVerify !== undefined || service.clientCrl !== undefined;
    const wantsBackend = service.backendCa !== undefined && service.backendProtocol === 'https';
    const key = (k: keyof typeof KEYS) => `${HTTP_SECTION.dir}${service.name}/${KEYS[k]}`;
    const files: { -readonly [K in keyof ServiceCaFiles]: ServiceCaFiles[K] } = {};
    if (wantsBackend) {
      const bundle = lookup('backend-ca', service.backendCa);
      if (bundle) files.backendCa = fileOf(bundle);
      else {
        files.closed = { status: 503 };
        rejected.push({ key: key('backendCa'), code: 'unusable_backend_ca', reason: missing('backend-cas', service.backendCa!, '503 to every request') });
      }
    }
    if (wantsClient) {
      const closeBecause = (k: keyof typeof KEYS, reason: string | undefined) => {
        files.closed = { status: 403 };
        if (reason !== undefined)
          rejected.push({ key: key(k), code: 'unusable_client_auth', reason: `${reason}; the service is closed (403 to every request)` });
      };
      const ca = lookup('client-ca', service.clientCa);
      const crl = lookup('client-crl', service.clientCrl);
      // An invalid value of a key was reported by the parser (its closed value is served): closed, not reported twice.
      if (service.clientCa === CLOSED_CA_NAME || service.clientCrl === CLOSED_CA_NAME || service.clientVerify === 'closed') closeBecause('clientCa', undefined);
      else if (service.clientCa === undefined) closeBecause(service.clientVerify !== undefined ? 'clientVerify' : 'clientCrl', 'set without client_ca');
      else if (!ca) closeBecause('clientCa', missing('client-cas', service.clientCa, 'no client can be verified'));
      else if (service.clientCrl !== undefined && !crl) closeBecause('clientCrl', missing('client-crls', service.clientCrl, 'revoked certificates would pass'));
      else if (service.virtualHosts.length === 0)
        closeBecause('clientCa', 'client certificates are asked per TLS server name, and the service has no virtual_hosts');
      else {
        const check = {
          verify: service.clientVerify === 'optional' ? ('optional' as const) : ('required' as const),
          caFile: path.join(caDir, ca.fileName),
          ...(crl ? { crlFile: path.join(caDir, crl.fileName) } : {}),
        };
        const snis = service.virtualHosts.map((h) => (h.wildcard ? `*.${h.name}` : h.name));
        const clash = snis.map((sni) => hosts.get(sni)).find((other) => other !== undefined && !sameCheck(other, check));
        if (clash)
          closeBecause('clientCa', `host ${clash.sni} already has another client-certificate check (service ${clash.service}): a TLS server name has one`);
        else {
          files.clientCa = fileOf(ca);
          if (crl) files.clientCrl = fileOf(crl);
          for (const sni of snis) {
            if (hosts.has(sni)) continue;
            hosts.set(sni, { ...check, sni, service: service.name });
            clientAuth.push({ ...check, sni });
          }
          return { service, files, snis };
        }
      }
    }
    return { service, files };
  });
  const resolved = checks.map(({ service, files, snis }) => {
    const own = snis && hosts.get(snis[0]!);
    const others = own ? otherChecksUnder(snis, own, [...hosts.values()]) : undefined;
    return withFiles(service, others ? { ...files, otherChecks: others } : files);
  });
  return {
    // The parsed state itself when no service names a bundle: its derivation (state-changes.ts) stays usable.
    state: withResolved(state, naming, { http: resolved, tcp: [] }),
    rejected: Object.freeze(rejected),
    files: [...used.values()].sort((a, b) => (a.file < b.file ? -1 : 1)),
    clientAuth: clientAuth.sort((a, b) => (a.sni < b.sni ? -1 : a.sni > b.sni ? 1 : 0)),
  };
}

/**
 * The exact host names, one label under a checked wildcard (`www.example.com` under
 * `*.example.com`), that ask for no client certificate of their own: each gets a plain crt-list
 * line (tls/client-auth-lines.ts), else the wildcard's line would ask their clients for the
 * wildcard's certificates. Reads every service only while a wildcard is checked.
 */
export function uncheckedUnderWildcards(state: DesiredState, checks: readonly ClientAuthHost[]): string[] {
  const wildcards = new Set(checks.filter((c) => c.sni.startsWith('*.')).map((c) => c.sni.slice(2)));
  if (wildcards.size === 0) return [];
  const checked = new Set(checks.map((c) => c.sni));
  const names = new Set<string>();
  for (const service of state.http) {
    for (const host of service.virtualHosts) {
      const dot = host.name.indexOf('.');
      if (!host.wildcard && !checked.has(host.name) && wildcards.has(host.name.slice(dot + 1))) names.add(host.name);
    }
  }
  return [...names].sort();
}

function missing(dir: string, name: string, effect: string): string {
  return `no usable bundle ${name} (${dir}/${name} is missing or was rejected): ${effect}`;
}

/**
 * The host names checked against another trust (CA bundle, CRL) that a service's wildcard hosts route to it: `*.example.com`
 * routes `admin.example.com` (and deeper names) whenever no rule of its own service takes the
 * request (another path), while the handshake checked the client against admin's CA. Its backend
 * refuses those TLS server names (421); undefined when there are none.
 */
function otherChecksUnder(snis: readonly string[], own: Omit<ClientAuthHost, 'sni'>, all: readonly ClientAuthHost[]) {
  const suffixes = snis.filter((sni) => sni.startsWith('*.')).map((sni) => sni.slice(1));
  const under = all.filter(
    (host) => trustOf(host) !== trustOf(own) && suffixes.some((suffix) => host.sni.replace(/^\*\./, '.').endsWith(suffix) && host.sni !== `*${suffix}`),
  );
  if (under.length === 0) return undefined;
  return {
    exact: under.filter((h) => !h.sni.startsWith('*.')).map((h) => h.sni),
    suffixes: under.filter((h) => h.sni.startsWith('*.')).map((h) => h.sni.slice(1)),
  };
}

function sameCheck(a: Omit<ClientAuthHost, 'sni'>, b: Omit<ClientAuthHost, 'sni'>): boolean {
  return a.verify === b.verify && a.caFile === b.caFile && a.crlFile === b.crlFile;
}

/** The same resolved object for the same service and files, so an unchanged service keeps its rendered section. */
const resolvedOf = new WeakMap<HttpService, { key: string; service: HttpService }>();

function withFiles(service: HttpService, caFiles: ServiceCaFiles): HttpService {
  const key = JSON.stringify(caFiles);
  const last = resolvedOf.get(service);
  if (last?.key === key) return last.service;
  const resolved = Object.freeze({ ...service, caFiles: Object.freeze(caFiles) });
  resolvedOf.set(service, { key, service: resolved });
  return resolved;
}
