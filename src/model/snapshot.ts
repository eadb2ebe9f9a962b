import { KEY_PATHS, serviceKindOfDir } from './keyspace.js';
import type { Entries } from './types.js';

/**
 * A view of the load balancer's keys at one etcd revision, read by group rather than whole: with
 * 10,000 services (40,000 keys) a consumer that copied or scanned every key on every change would
 * spend tens of milliseconds on a change to one instance.
 *
 * Keys are relative to the load balancer's path. A *group* is one service's keys
 * (`services/<name>` or `tcp-services/<name>` and everything under it), one ACME directory
 * (`acme/<dir>`), or one other top-level directory (`certs`): see groupOf.
 *
 * A snapshot from EtcdSource reads the source's live keys: it may only be read while it is the
 * newest one (consumers keep only the newest; read it before the next await), and a read after
 * a newer one arrived throws instead of answering with another revision's keys.
 */
export interface Snapshot {
  readonly revision: string;
  /** Every key (a view, not a copy): for a full pass only (after a fresh read of etcd). */
  readonly entries: Entries;
  get(key: string): string | undefined;
  /** The keys of one group (see groupOf), as a new map. */
  group(name: string): Entries;
  /** The keys under `dir` (ending in '/'), read from the groups it spans, as a new map. */
  under(dir: string): Entries;
  /**
   * The groups whose keys changed between `earlier` (a snapshot of the same source, handed out
   * before this one) and this one. Undefined when that is not known: the source read everything
   * again since, `earlier` is older than the changes the source remembers, or comes from
   * elsewhere. The consumer then does a full pass over `entries`.
   */
  changedSince(earlier: Snapshot | undefined): ReadonlySet<string> | undefined;
}

/** Directories with one group per entry below them: `services/<name>/...` is the group `services/<name>`. */
export const SPLIT_DIRS: ReadonlySet<string> = new Set([KEY_PATHS.services, KEY_PATHS.tcpServices, KEY_PATHS.acme].map((dir) => dir.slice(0, -1)));

/** The group a key belongs to: see Snapshot. */
export function groupOf(key: string): string {
  const first = key.indexOf('/');
  if (first < 0) return key;
  const top = key.slice(0, first);
  if (!SPLIT_DIRS.has(top)) return top;
  const second = key.indexOf('/', first + 1);
  return second < 0 ? key : key.slice(0, second);
}

/** The top-level directory of a key or group: `services` for `services/web/upstreams/a`. */
export function topDirOf(key: string): string {
  const first = key.indexOf('/');
  return first < 0 ? key : key.slice(0, first);
}

/** A service's group name as a parsed service key (`http:web`), or undefined for any other group. */
export function serviceKeyOfGroup(group: string): string | undefined {
  const slash = group.indexOf('/');
  if (slash < 0) return undefined;
  const kind = serviceKindOfDir(group.slice(0, slash));
  return kind && `${kind}:${group.slice(slash + 1)}`;
}

/** Whether a changed group can change the parsed routes (a service's keys, or a stray key in their directories). */
export function isServiceGroup(group: string): boolean {
  return serviceKindOfDir(topDirOf(group)) !== undefined;
}

/**
 * A snapshot of fixed entries (tests, tools): every read is served from `entries`, and nothing
 * is known about what changed, so consumers do a full pass.
 */
export function fixedSnapshot(entries: Entries, revision = '1'): Snapshot {
  return {
    revision,
    entries,
    get: (key) => entries.get(key),
    group: (name) => new Map([...entries].filter(([key]) => groupOf(key) === name)),
    under: (dir) => new Map([...entries].filter(([key]) => key.startsWith(dir))),
    changedSince: () => undefined,
  };
}
