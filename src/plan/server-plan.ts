import { isIP } from 'node:net';
import { changedServices, findService, sameValue, serviceKey } from '../model/state-changes.js';
import type { DesiredState, HttpService, TcpService, Upstream } from '../model/types.js';
import { serverProtocolView } from '../render/routing-view.js';
import { httpBackendName, httpBackendView, serviceHeadView, tcpProxyName, tcpServiceView } from '../render/view.js';

/** One server as the runtime API creates or moves it: the same arguments as its line in the file. */
export interface ServerSpec {
  /** The service it belongs to, as `http:web` / `tcp:db`. */
  readonly service: string;
  readonly proxy: string;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** The address as the config writes it (`10.0.0.1:80`, `[fd00::1]:80`). */
  readonly address: string;
  /** Everything after the address (`check inter 2s ... weight 100`): templates/server-args.hbs. */
  readonly args: string;
  /** weights/<instance> (also in `args`): what `set server ... weight` restores after a move. */
  readonly weight: number;
}

/** What turns the servers of the applied state into those of the desired one without a reload. */
export interface ServerPlan {
  readonly add: readonly ServerSpec[];
  readonly remove: readonly ServerSpec[];
  /** Same server name and options, new address: `set server ... addr`. */
  readonly readdress: readonly ServerSpec[];
  /** Same server, only its weight changed: `set server ... weight <n>` (no reload, connections kept). */
  readonly reweight: readonly ServerSpec[];
}

export type ServerPlanResult = { readonly plan: ServerPlan } | { readonly reloadBecause: string };

/** A server's arguments after its address (render's createServerArgsRenderer, settings bound). */
export type ServerArgs = (service: HttpService | TcpService, upstream: Upstream) => string;

export const EMPTY_SERVER_PLAN: ServerPlan = Object.freeze({ add: [], remove: [], readdress: [], reweight: [] });

const DEFAULT_SERVER_REASON = 'a default-server line in custom settings would not apply to a server added at runtime';

/**
 * Whether the applied state becomes the desired one by adding, removing and moving servers, and
 * how. The two states are compared as data, service by service with the instances set aside (as
 * haproxy-ingress's dynupdate does): anything but the instances changed (a route, a setting) or a
 * server `add server` cannot create as the file would needs a reload. Only the services the parse
 * recorded as changed are looked at (changedServices): with 10,000 services, a few.
 * `defaultsSettings` are KONTENA_LB_CUSTOM_SETTINGS, the lines of the `defaults` section.
 */
export function planServers(before: DesiredState, after: DesiredState, serverArgs: ServerArgs, defaultsSettings: readonly string[] = []): ServerPlanResult {
  const pairs: { old: HttpService | TcpService; now: HttpService | TcpService }[] = [];
  for (const key of before === after ? [] : changedServices(before, after)) {
    const old = findService(before, key);
    const now = findService(after, key);
    if (!old || !now) return { reloadBecause: `service ${key} was ${old ? 'removed' : 'added'}` };
    if (!sameValue(renderedWithoutServers(old), renderedWithoutServers(now))) return { reloadBecause: `routes or settings of ${key} changed` };
    if (ownDefaultServerOptions(now.customSettings)) return { reloadBecause: DEFAULT_SERVER_REASON };
    pairs.push({ old, now });
  }
  if (pairs.length > 0 && ownDefaultServerOptions(defaultsSettings)) return { reloadBecause: DEFAULT_SERVER_REASON };
  const add: ServerSpec[] = [];
  const remove: ServerSpec[] = [];
  const readdress: ServerSpec[] = [];
  const reweight: ServerSpec[] = [];
  for (const { old, now } of pairs) {
    const spec = (service: HttpService | TcpService, upstream: Upstream) => serverSpecOf(service, upstream, serverArgs);
    const previous = new Map(old.upstreams.map((u) => [u.name, u]));
    const current = new Set(now.upstreams.map((u) => u.name));
    for (const upstream of old.upstreams) if (!current.has(upstream.name)) remove.push(spec(old, upstream));
    for (const upstream of now.upstreams) {
      const was = previous.get(upstream.name);
      if (was && was.host === upstream.host && was.port === upstream.port) {
        if (was.weight !== upstream.weight) reweight.push(spec(now, upstream));
        continue;
      }
      const why = notDynamic(now, upstream);
      if (why) return { reloadBecause: why };
      (was ? readdress : add).push(spec(now, upstream));
    }
  }
  return { plan: { add, remove, readdress, reweight } };
}

export function isEmptyPlan(plan: ServerPlan): boolean {
  return plan.add.length + plan.remove.length + plan.readdress.length + plan.reweight.length === 0;
}

/** The proxy a service's servers belong to (a backend, or a TCP service's listen section). */
function proxyOf(service: HttpService | TcpService): string {
  return service.kind === 'http' ? httpBackendName(service.name) : tcpProxyName(service.name);
}

function serverSpecOf(service: HttpService | TcpService, upstream: Upstream, serverArgs: ServerArgs): ServerSpec {
  const host = upstream.host.replace(/^\[(.*)\]$/, '$1');
  return {
    service: serviceKey(service),
    proxy: proxyOf(service),
    name: upstream.name,
    host,
    port: upstream.port,
    address: `${upstream.host}:${upstream.port}`,
    args: serverArgs(service, upstream),
    weight: upstream.weight,
  };
}

/**
 * What the config shows of a service, its servers set aside: its section's view and its part of
 * the head. A field no template reads (acme) changes nothing here, as it changes nothing in the file.
 */
function renderedWithoutServers(service: HttpService | TcpService): unknown {
  if (service.kind === 'tcp') return { ...tcpServiceView(service), servers: [] };
  // The protocol is on every server line, not the backend's: a change rewrites each server, a reload.
  return { ...httpBackendView(service), servers: [], head: serviceHeadView(service), protocol: serverProtocolView(service) };
}

const DEFAULT_SERVER = /^\s*default-server\b(.*)$/;

/**
 * Whether custom settings lines hold default-server options besides init-addr (which only matters
 * when a config is loaded): servers added through the runtime API ignore default-server, so they
 * would differ from the same servers loaded from the file.
 */
function ownDefaultServerOptions(lines: readonly string[]): boolean {
  return lines.some((line) => (DEFAULT_SERVER.exec(line)?.[1] ?? '').replace(/\s*init-addr\s+\S+/, '').trim() !== '');
}

function notDynamic(service: HttpService | TcpService, upstream: Upstream): string | undefined {
  const server = `${proxyOf(service)}/${upstream.name}`;
  // A dynamic server never resolves a name (init-addr none), so a host name would stay down for good.
  if (isIP(upstream.host.replace(/^\[(.*)\]$/, '$1')) === 0) return `server ${server} has a host name, not an IP address`;
  // `add server` takes no `cookie` in HAProxy 2.6 (management guide, "add server").
  if (service.kind === 'http' && service.cookie !== undefined) return `server ${server} uses an option the runtime API cannot set (cookie)`;
  return undefined;
}
