import { sameValue } from './state-changes.js';
import type { DesiredState } from './types.js';

export interface StateChanges {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
}

const fingerprints = new WeakMap<object, string>();

/**
 * A service's content as one string, remembered for a service HAProxy rejected (to tell when
 * its entries change). Services are immutable, so it is computed once per object.
 */
export function fingerprintOf(service: object): string {
  let text = fingerprints.get(service);
  if (text === undefined) fingerprints.set(service, (text = JSON.stringify(service)));
  return text;
}

/** Which services differ between two states, named `http:web` / `tcp:db`, for the apply log line. */
export function diffStates(before: DesiredState | undefined, after: DesiredState): StateChanges {
  const index = (state: DesiredState | undefined) =>
    new Map<string, object>([
      ...(state?.http ?? []).map((s) => [`http:${s.name}`, s] as const),
      ...(state?.tcp ?? []).map((s) => [`tcp:${s.name}`, s] as const),
    ]);
  const old = index(before);
  const now = index(after);
  // Services are immutable and unchanged ones are usually the very same object: compare by identity first.
  const differs = (a: object, b: object) => !sameValue(a, b);
  return {
    added: [...now.keys()].filter((k) => !old.has(k)),
    removed: [...old.keys()].filter((k) => !now.has(k)),
    changed: [...now.keys()].filter((k) => old.has(k) && differs(old.get(k)!, now.get(k)!)),
  };
}

export function isEmptyChange(changes: StateChanges): boolean {
  return changes.added.length + changes.removed.length + changes.changed.length === 0;
}
