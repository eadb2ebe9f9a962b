import { isIP } from 'node:net';
import type { ConfigChange } from '../render/config-diff.js';

/** One `server` line of a rendered config, split into the parts the runtime API needs. */
export interface ServerLine {
  readonly proxy: string;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** The address as the config writes it. */
  readonly address: string;
  /** Everything after the address, as the template wrote it (`check inter 2s ...`). */
  readonly args: string;
}

/** The servers of a config, by proxy then by server name, and the config text without them. */
export interface ServerLayout {
  readonly skeleton: string;
  readonly servers: ReadonlyMap<string, ReadonlyMap<string, ServerLine>>;
}

/** What turns the servers of one config into those of another without a reload. */
export interface ServerPlan {
  readonly add: readonly ServerLine[];
  readonly remove: readonly ServerLine[];
  /** Same server name and options, new address: `set server ... addr`. */
  readonly readdress: readonly ServerLine[];
}

export type PlanResult = { readonly plan: ServerPlan } | { readonly reloadBecause: string };

const SECTION = /^(\S+)\s+(\S+)/;
const SERVER = /^\s+server\s+(\S+)\s+(\S+)(?:\s+(.*?))?\s*$/;
/** Keywords `add server` does not accept in HAProxy 2.6 (management guide, "add server"). */
const NOT_DYNAMIC = /(?:^|\s)(?:cookie|init-addr|resolvers|redir|track)\s/;

/**
 * Splits a rendered config into its `server` lines and everything else. Two configs with the
 * same skeleton differ only in their servers, which HAProxy's runtime API can change in place.
 */
export function layoutOf(text: string): ServerLayout {
  const servers = new Map<string, Map<string, ServerLine>>();
  const skeleton: string[] = [];
  let proxy = '';
  for (const line of text.split('\n')) {
    const section = SECTION.exec(line);
    if (section && !line.startsWith(' ')) proxy = section[1] === 'backend' || section[1] === 'listen' ? section[2]! : '';
    const server = proxy === '' ? null : SERVER.exec(line);
    if (!server) {
      skeleton.push(line);
      continue;
    }
    const [, name, address, args = ''] = server as unknown as [string, string, string, string | undefined];
    const split = splitAddress(address);
    const list = servers.get(proxy) ?? new Map<string, ServerLine>();
    list.set(name, { proxy, name, host: split.host, port: split.port, address, args });
    servers.set(proxy, list);
  }
  return { skeleton: skeleton.join('\n'), servers };
}

/**
 * Decides whether the running config can become the new one through the runtime API, and
 * how. Anything but added, removed or re-addressed servers (a route, a setting, a server's
 * options) needs a reload, and so does a server `add server` cannot create as the file would.
 * Only the sections that differ are looked into (diffConfigs): with 10,000 services, a few.
 * `defaultsSettings` are KONTENA_LB_CUSTOM_SETTINGS, the lines of the `defaults` section.
 */
export function planServerChanges(change: ConfigChange, defaultsSettings: readonly string[] = []): PlanResult {
  if (change.settingsChanged || change.headBefore !== change.headAfter) return { reloadBecause: 'routes or settings changed' };
  if (hasOwnDefaultServer(defaultsSettings.join('\n'))) return { reloadBecause: DEFAULT_SERVER_REASON };
  const changed: { before: ServerLayout; after: ServerLayout }[] = [];
  for (const section of change.sections) {
    if (section.before === undefined || section.after === undefined) return { reloadBecause: 'a service was added or removed' };
    changed.push({ before: layoutOf(section.before), after: layoutOf(section.after) });
  }
  for (const layouts of changed) {
    if (layouts.before.skeleton !== layouts.after.skeleton) return { reloadBecause: 'a service setting changed' };
    if (hasOwnDefaultServer(layouts.after.skeleton)) return { reloadBecause: DEFAULT_SERVER_REASON };
  }
  return diffServers(changed);
}

function diffServers(changed: readonly { before: ServerLayout; after: ServerLayout }[]): PlanResult {
  const add: ServerLine[] = [];
  const remove: ServerLine[] = [];
  const readdress: ServerLine[] = [];
  const pairs = changed.flatMap(({ before, after }) =>
    [...new Set([...before.servers.keys(), ...after.servers.keys()])].map((proxy) => ({
      proxy, old: before.servers.get(proxy) ?? new Map<string, ServerLine>(), now: after.servers.get(proxy) ?? new Map<string, ServerLine>(),
    })));
  for (const { proxy, old, now } of pairs) {
    for (const [name, line] of old) if (!now.has(name)) remove.push(line);
    for (const [name, line] of now) {
      const previous = old.get(name);
      if (!previous) {
        const why = notDynamic(line);
        if (why) return { reloadBecause: why };
        add.push(line);
      } else if (previous.args !== line.args) {
        return { reloadBecause: `options of server ${proxy}/${name} changed` };
      } else if (previous.host !== line.host || previous.port !== line.port) {
        const why = notDynamic(line);
        if (why) return { reloadBecause: why };
        readdress.push(line);
      }
    }
  }
  return { plan: { add, remove, readdress } };
}

export function isEmptyPlan(plan: ServerPlan): boolean {
  return plan.add.length + plan.remove.length + plan.readdress.length === 0;
}

const DEFAULT_SERVER_REASON = 'a default-server line in custom settings would not apply to a server added at runtime';
const DEFAULT_SERVER = /^\s*default-server\b(.*)$/gm;

/**
 * Whether `text` has default-server options besides the template's init-addr (which only
 * matters when a config is loaded): servers added through the runtime API ignore
 * default-server, so they would differ from the same servers loaded from the file.
 */
function hasOwnDefaultServer(text: string): boolean {
  return [...text.matchAll(DEFAULT_SERVER)].some((m) => (m[1] ?? '').replace(/\s*init-addr\s+\S+/, '').trim() !== '');
}

function notDynamic(line: ServerLine): string | undefined {
  // A dynamic server never resolves a name (init-addr none), so a host name would stay down for good.
  if (isIP(line.host) === 0) return `server ${line.proxy}/${line.name} has a host name, not an IP address`;
  if (NOT_DYNAMIC.test(` ${line.args} `)) return `server ${line.proxy}/${line.name} uses an option the runtime API cannot set`;
  return undefined;
}

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(at + 1)) };
}
