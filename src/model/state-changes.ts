import { compare } from './parse.js';
import type { DesiredState, HttpService, TcpService } from './types.js';

/** Service keys as the logs and diffStates name them: `http:web`, `tcp:db`. */
export const serviceKey = (service: HttpService | TcpService): string => `${service.kind}:${service.name}`;

interface Derivation {
  /** Weak: a chain of states must not keep every earlier state (and its services) alive. */
  readonly base: WeakRef<DesiredState>;
  readonly changed: ReadonlySet<string>;
}

const derivations = new WeakMap<DesiredState, Derivation>();
const MAX_CHAIN = 8;

/**
 * A state made from `base` by replacing the services named in `changed` (service keys), all
 * other services being the very same objects. Later stages (render, ACME) then learn what
 * changed from changedServices without comparing 10,000 services.
 */
export function derivedState(base: DesiredState, http: readonly HttpService[], tcp: readonly TcpService[], changed: ReadonlySet<string>): DesiredState {
  const state: DesiredState = Object.freeze({ http: Object.freeze(http), tcp: Object.freeze(tcp) });
  derivations.set(state, { base: new WeakRef(base), changed });
  return state;
}

/**
 * The keys of the services whose object differs between two states (added, removed or
 * replaced). From the record of derivedState when `after` was made from `before` (directly or
 * through a few steps), otherwise by walking both (sorted) lists comparing objects by identity:
 * a pointer comparison per service (about 0.1 ms for 10,000).
 */
export function changedServices(before: DesiredState | undefined, after: DesiredState): ReadonlySet<string> {
  if (before === after) return new Set();
  if (before) {
    const union = new Set<string>();
    let state: DesiredState | undefined = after;
    for (let step = 0; state && step < MAX_CHAIN; step++) {
      const derivation = derivations.get(state);
      if (!derivation) break;
      for (const key of derivation.changed) union.add(key);
      state = derivation.base.deref();
      if (state === before) return union;
    }
  }
  const changed = new Set<string>();
  walk(before?.http ?? [], after.http, changed);
  walk(before?.tcp ?? [], after.tcp, changed);
  return changed;
}

function walk<S extends HttpService | TcpService>(a: readonly S[], b: readonly S[], changed: Set<string>): void {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (x !== undefined && x === y) {
      i++;
      j++;
      continue;
    }
    const order = x === undefined ? 1 : y === undefined ? -1 : compare(x.name, y.name);
    if (order <= 0) changed.add(serviceKey(x!));
    if (order >= 0) changed.add(serviceKey(y!));
    if (order <= 0) i++;
    if (order >= 0) j++;
  }
}

/** The service named by `key` in a state, found by binary search (the lists are sorted by name). */
export function findService(state: DesiredState, key: string): HttpService | TcpService | undefined {
  const colon = key.indexOf(':');
  const kind = key.slice(0, colon);
  const name = key.slice(colon + 1);
  const list: readonly (HttpService | TcpService)[] = kind === 'http' ? state.http : kind === 'tcp' ? state.tcp : [];
  const index = indexOfName(list, name);
  return index >= 0 ? list[index] : undefined;
}

/** The index of the service called `name` in a list sorted by name, or -1. */
export function indexOfName(list: readonly { readonly name: string }[], name: string): number {
  let low = 0;
  let high = list.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const order = compare(list[middle]!.name, name);
    if (order === 0) return middle;
    if (order < 0) low = middle + 1;
    else high = middle - 1;
  }
  return -1;
}

/** Structural equality of parsed values (frozen plain objects, arrays and primitives). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) {
    if (!Object.hasOwn(b, key)) return false;
    if (!sameValue((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])) return false;
  }
  return true;
}
