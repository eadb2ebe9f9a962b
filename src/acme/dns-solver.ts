import type { AcmeDnsSettings } from '../settings/acme-dns.js';
import type { DnsSolver } from './dns-challenge.js';
import { DnsHookPublisher } from './dns-hook.js';
import { Rfc2136Publisher } from './rfc2136.js';

/** Between two rounds of propagation queries. */
const PROPAGATION_POLL_MS = 1000;
const QUERY_TIMEOUT_MS = 3000;
const UPDATE_TIMEOUT_MS = 10_000;

/**
 * The DNS-01 publisher and propagation wait the settings ask for; undefined without a publisher.
 * `withheldEnv`: the variables a hook does not get (settings/acme-dns.ts withheldFromHook).
 */
export function dnsSolverOf(settings: AcmeDnsSettings, withheldEnv: readonly string[] = []): DnsSolver | undefined {
  const { publisher } = settings;
  if (!publisher) return undefined;
  return {
    publisher:
      publisher.kind === 'hook'
        ? new DnsHookPublisher({ path: publisher.path, timeoutMs: publisher.timeoutMs, withheldEnv })
        : new Rfc2136Publisher({
            server: publisher.server,
            key: { name: publisher.keyName, algorithm: publisher.algorithm, secret: publisher.secret },
            timeoutMs: UPDATE_TIMEOUT_MS,
          }),
    propagation: {
      ...(settings.resolvers ? { resolvers: settings.resolvers } : {}),
      timeoutMs: settings.propagationTimeoutMs,
      pollMs: PROPAGATION_POLL_MS,
      queryTimeoutMs: QUERY_TIMEOUT_MS,
    },
  };
}
