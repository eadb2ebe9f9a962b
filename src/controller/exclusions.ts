import type { Logger } from '../log.js';
import { fingerprintOf } from '../model/diff.js';
import { legacyHint } from '../model/legacy-directives.js';
import { findService, serviceKey } from '../model/state-changes.js';
import type { DesiredState } from '../model/types.js';
import { event } from './log-events.js';

/**
 * Services HAProxy rejected (usually for their custom_settings), left out so that every other
 * service is still applied, and remembered until their entries change.
 */
export class Exclusions {
  constructor(private readonly logger: Logger) {}

  /** By service key, with the fingerprint of the version HAProxy rejected. */
  private readonly excluded = new Map<string, { fingerprint: string; reason: string }>();

  /** The state without the services HAProxy rejected, unless their entries have changed since. */
  apply(state: DesiredState): DesiredState {
    for (const [service, { fingerprint }] of this.excluded) {
      if (fingerprintIn(state, service) !== fingerprint) this.excluded.delete(service);
    }
    if (this.excluded.size === 0) return state;
    const http = state.http.filter((s) => !this.excluded.has(serviceKey(s)));
    // A canary whose service was left out would route to a backend the config no longer has.
    const served = new Set(http.map((s) => s.name));
    return {
      http: http.map((s) => (s.canary && !served.has(s.canary.service) ? { ...s, canary: undefined } : s)),
      tcp: state.tcp.filter((s) => !this.excluded.has(serviceKey(s))),
    };
  }

  /** Leaves `service` out until its entries change, and says so (with a hint for HAProxy 1.8 syntax). */
  add(state: DesiredState, service: string, reason: string): void {
    this.excluded.set(service, { fingerprint: fingerprintIn(state, service), reason });
    // An HAProxy 1.8 directive in custom_settings is the usual cause after a move from the Kontena load balancer.
    const hint = legacyHint(findService(state, service)?.customSettings ?? [], 'proxy');
    this.logger.error(
      { ...event('service.excluded'), service, haproxyError: reason, ...(hint ? { hint } : {}) },
      'service left out: HAProxy rejected its settings',
    );
  }

  list(): { service: string; reason: string }[] {
    return [...this.excluded].map(([service, { reason }]) => ({ service, reason }));
  }
}

function fingerprintIn(state: DesiredState, key: string): string {
  const service = findService(state, key);
  return service ? fingerprintOf(service) : 'null';
}
