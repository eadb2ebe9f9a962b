import { parseEntries, type ParseOptions } from './parse.js';
import { groupOf, isServiceGroup, serviceKeyOfGroup, type Snapshot } from './snapshot.js';
import { derivedState, indexOfName, sameValue, serviceKey } from './state-changes.js';
import type { DesiredState, Entries, HttpService, ParseResult, TcpService } from './types.js';

/**
 * Parses each snapshot, only the services whose keys changed when it can: parsing 10,000
 * services takes most of a second, finding and parsing one takes well under a millisecond.
 * Keeps no copy of the entries (the snapshot says which groups changed since the last one).
 */
export class SnapshotParser {
  private last: { readonly snapshot: Snapshot; readonly result: ParseResult } | undefined;

  constructor(private readonly options: ParseOptions) {}

  /** The last result, for consumers that start late (ACME). */
  get result(): ParseResult | undefined {
    return this.last?.result;
  }

  parse(snapshot: Snapshot): ParseResult {
    const previous = this.last;
    const changed = previous && snapshot.changedSince(previous.snapshot);
    const quick = previous && changed && reparseGroups(previous.result, changed, (group) => snapshot.group(group), this.options);
    const result = quick ?? reuseUnchanged(previous?.result.state, parseEntries(snapshot.entries, this.options));
    this.last = { snapshot, result };
    return result;
  }
}

/**
 * The parse of the entries after the groups `changed` changed, from the previous result and
 * those groups' keys only; exactly what parseEntries would give, or undefined when that cannot
 * be sure (then the caller parses everything). Sure when every changed service group belongs
 * to a service that parsed cleanly before and still does on its own: HTTP services depend on
 * nothing else, and a TCP service only through its port, which must not have changed.
 * Every other service keeps its (immutable) object, so later stages can tell what changed by
 * identity (see changedServices).
 */
export function reparseGroups(
  previous: ParseResult,
  changed: ReadonlySet<string>,
  read: (group: string) => Entries,
  options: ParseOptions,
): ParseResult | undefined {
  const groups = [...changed].filter(isServiceGroup);
  if (groups.length === 0) return previous;
  if (groups.some((group) => serviceKeyOfGroup(group) === undefined)) return undefined;
  // A service with a rejected entry may change more than itself when one is fixed.
  const rejectedGroups = rejectedGroupsOf(previous);
  if (groups.some((group) => rejectedGroups.has(group))) return undefined;

  const subset = new Map<string, string>();
  for (const group of groups) for (const [key, value] of read(group)) subset.set(key, value);
  // The services' own ports were checked against the reserved ones before and must stay the same.
  const partial = parseEntries(subset, { ...options, reservedPorts: [] });
  if (partial.rejected.length > 0) return undefined;
  if (partial.state.http.length + partial.state.tcp.length !== groups.length) return undefined;

  const http = replaced(previous.state.http, partial.state.http);
  const tcp = replaced(previous.state.tcp, partial.state.tcp, (old, now) => old.externalPort === now.externalPort);
  // A service that appears or disappears changes the config's shape (and the service limit).
  if (!http || !tcp) return undefined;
  if (http.list === previous.state.http && tcp.list === previous.state.tcp) return previous;
  const state = derivedState(previous.state, http.list, tcp.list, new Set([...http.swapped, ...tcp.swapped]));
  return Object.freeze({ state, rejected: previous.rejected });
}

/**
 * `list` with each of `fresh` in place of the service of the same name; undefined when one
 * was not there or `compatible` says no. A fresh service equal to the old one keeps the old object.
 */
function replaced<S extends HttpService | TcpService>(
  list: readonly S[],
  fresh: readonly S[],
  compatible: (old: S, now: S) => boolean = () => true,
): { list: readonly S[]; swapped: Set<string> } | undefined {
  if (fresh.length === 0) return { list, swapped: new Set() };
  let copy: S[] | undefined;
  const swapped = new Set<string>();
  for (const service of fresh) {
    const index = indexOfName(list, service.name);
    if (index < 0) return undefined;
    const old = list[index]!;
    if (!compatible(old, service)) return undefined;
    if (sameValue(old, service)) continue;
    copy ??= [...list];
    copy[index] = service;
    swapped.add(serviceKey(service));
  }
  return { list: copy ?? list, swapped };
}

const rejectedGroups = new WeakMap<ParseResult, ReadonlySet<string>>();

function rejectedGroupsOf(result: ParseResult): ReadonlySet<string> {
  let groups = rejectedGroups.get(result);
  if (!groups) rejectedGroups.set(result, (groups = new Set(result.rejected.map((r) => groupOf(r.key)))));
  return groups;
}

/**
 * Services equal to one of `previous` are replaced by that (older) object, so that caches
 * keyed by service objects (the renderer's) hit after a full parse too.
 */
export function reuseUnchanged(previous: DesiredState | undefined, result: ParseResult): ParseResult {
  if (!previous) return result;
  const pick =
    <S extends HttpService | TcpService>(list: readonly S[]) =>
    (s: S): S => {
      const index = indexOfName(list, s.name);
      const old = index >= 0 ? list[index]! : undefined;
      return old !== undefined && sameValue(old, s) ? old : s;
    };
  const http = result.state.http.map(pick(previous.http));
  const tcp = result.state.tcp.map(pick(previous.tcp));
  return Object.freeze({ state: Object.freeze({ http: Object.freeze(http), tcp: Object.freeze(tcp) }), rejected: result.rejected });
}
