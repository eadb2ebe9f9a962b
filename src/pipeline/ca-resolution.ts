import path from 'node:path';
import { CLOSED_CA_NAME } from '../model/client-auth.js';
import { HTTP_SECTION } from '../model/keyspace.js';
import { keyOf } from '../model/keyspace-rows.js';
import type { DesiredState, HttpService, Rejection, ServiceCaFiles } from '../model/types.js';
import { caStoreKey, type CaBundle, type CaKind, type CaStore } from '../tls/ca-bundles.js';
import type { ClientAuthHost } from '../tls/client-auth-lines.js';

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

/** The last resolution per parsed state: the same result (and service objects) while state, store and dir are the same. */
const memo = new WeakMap<DesiredState, { store: CaStore; caDir: string; result: CaResolution }>();

export function resolveCaBundles(state: DesiredState, store: CaStore, caDir: string): CaResolution {
  const last = memo.get(state);
  if (last && last.store === store && last.caDir === caDir) return last.result;
  const result = resolve(state, store, caDir);
  memo.set(state, { store, caDir, result });
  return result;
}

function resolve(state: DesiredState, store: CaStore, caDir: string): CaResolution {
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

  const http = state.http.map((service) => {
    const wantsClient = service.clientCa !== undefined || service.clientVerify !== undefined || service.clientCrl !== undefined;
    const wantsBackend = service.backendCa !== undefined && service.backendProtocol === 'https';
    if (!wantsClient && !wantsBackend) return service;
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
        }
      }
    }
    return withFiles(service, files);
  });
  return {
    // The parsed state itself when no service names a bundle: its derivation (state-changes.ts) stays usable.
    state: http.every((service, i) => service === state.http[i]) ? state : Object.freeze({ http: Object.freeze(http), tcp: state.tcp }),
    rejected: Object.freeze(rejected),
    files: [...used.values()].sort((a, b) => (a.file < b.file ? -1 : 1)),
    clientAuth: clientAuth.sort((a, b) => (a.sni < b.sni ? -1 : a.sni > b.sni ? 1 : 0)),
  };
}

function missing(dir: string, name: string, effect: string): string {
  return `no usable bundle ${name} (${dir}/${name} is missing or was rejected): ${effect}`;
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
