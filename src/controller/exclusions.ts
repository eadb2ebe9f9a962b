import { fingerprintOf } from '../model/diff.js';
import { findService, serviceKey } from '../model/state-changes.js';
import type { DesiredState } from '../model/types.js';

/**
 * Services HAProxy rejected (usually for their custom_settings), left out so that every other
 * service is still applied, and remembered until their entries change.
 */
export class Exclusions {
  /** By service key, with the fingerprint of the version HAProxy rejected. */
  private readonly excluded = new Map<string, { fingerprint: string; reason: string }>();

  /** The state without the services HAProxy rejected, unless their entries have changed since. */
  apply(state: DesiredState): DesiredState {
    for (const [service, { fingerprint }] of this.excluded) {
      if (fingerprintIn(state, service) !== fingerprint) this.excluded.delete(service);
    }
    if (this.excluded.size === 0) return state;
    return {
      http: state.http.filter((s) => !this.excluded.has(serviceKey(s))),
      tcp: state.tcp.filter((s) => !this.excluded.has(serviceKey(s))),
    };
  }

  add(state: DesiredState, service: string, reason: string): void {
    this.excluded.set(service, { fingerprint: fingerprintIn(state, service), reason });
  }

  list(): { service: string; reason: string }[] {
    return [...this.excluded].map(([service, { reason }]) => ({ service, reason }));
  }
}

function fingerprintIn(state: DesiredState, key: string): string {
  const service = findService(state, key);
  return service ? fingerprintOf(service) : 'null';
}
