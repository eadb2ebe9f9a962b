import { fingerprintOf } from './diff.js';
import { parseEntries, type ParseOptions } from './parse.js';
import type { DesiredState, Entries, HttpService, ParseResult, TcpService } from './types.js';

/**
 * Parsing 10,000 services takes most of a second. When all that changed between two snapshots
 * are upstream keys of services that parsed cleanly before, only those services are parsed
 * again and every other one keeps its (immutable) object, so later stages can tell what
 * changed by identity. Gives exactly what parseEntries(entries) would, or undefined when it
 * cannot be sure (then the caller parses everything).
 */
export function reparseUpstreamChanges(
  previous: { readonly entries: Entries; readonly result: ParseResult },
  entries: Entries,
  options: ParseOptions,
): ParseResult | undefined {
  const changed = changedKeys(previous.entries, entries);
  if (changed.length === 0) return previous.result;
  const affected = new Set<string>();
  for (const key of changed) {
    const match = UPSTREAM_KEY.exec(key);
    if (!match) return undefined;
    affected.add(`${match[1]}/${match[2]}/`);
  }
  // A service with a rejected entry may change more than its upstreams when one is fixed.
  if (previous.result.rejected.some((r) => [...affected].some((prefix) => r.key.startsWith(prefix)))) return undefined;

  const subset = new Map<string, string>();
  for (const [key, value] of entries) {
    // Cheap test first: most keys belong to none of the (few) affected services.
    const second = key.indexOf('/', key.indexOf('/') + 1);
    if (second > 0 && affected.has(key.slice(0, second + 1))) subset.set(key, value);
  }
  // The services' own ports are claimed already by themselves; nothing else claims anything here.
  const partial = parseEntries(subset, { ...options, reservedPorts: [] });
  if (partial.rejected.length > 0) return undefined;
  if (partial.state.http.length + partial.state.tcp.length !== affected.size) return undefined;

  let found = 0;
  const swap = <S extends HttpService | TcpService>(list: readonly S[], fresh: readonly S[]): S[] => {
    if (fresh.length === 0) return [...list];
    const byName = new Map(fresh.map((s) => [s.name, s]));
    return list.map((s) => {
      const replacement = byName.get(s.name);
      if (replacement) found++;
      return replacement ?? s;
    });
  };
  const http = swap(previous.result.state.http, partial.state.http);
  const tcp = swap(previous.result.state.tcp, partial.state.tcp);
  // A service that appears for the first time (only upstreams so far) changes the config's shape.
  if (found !== affected.size) return undefined;
  const state: DesiredState = Object.freeze({ http: Object.freeze(http), tcp: Object.freeze(tcp) });
  return Object.freeze({ state, rejected: previous.result.rejected });
}

/**
 * Services equal to one of `previous` are replaced by that (older) object, so that caches
 * keyed by service objects (the renderer's) hit after a full parse too.
 */
export function reuseUnchanged(previous: DesiredState | undefined, result: ParseResult): ParseResult {
  if (!previous) return result;
  const index = new Map<string, HttpService | TcpService>();
  for (const s of [...previous.http, ...previous.tcp]) index.set(`${s.kind}:${s.name}`, s);
  let reused = 0;
  const pick = <S extends HttpService | TcpService>(s: S): S => {
    const old = index.get(`${s.kind}:${s.name}`);
    if (!old || fingerprintOf(old) !== fingerprintOf(s)) return s;
    reused++;
    return old as S;
  };
  const http = result.state.http.map(pick);
  const tcp = result.state.tcp.map(pick);
  if (reused === 0) return result;
  return Object.freeze({ state: Object.freeze({ http: Object.freeze(http), tcp: Object.freeze(tcp) }), rejected: result.rejected });
}

const UPSTREAM_KEY = /^(services|tcp-services)\/([^/]+)\/upstreams\/[^/]+$/;

function changedKeys(before: Entries, after: Entries): string[] {
  const changed: string[] = [];
  for (const [key, value] of after) if (before.get(key) !== value) changed.push(key);
  for (const key of before.keys()) if (!after.has(key)) changed.push(key);
  return changed;
}
