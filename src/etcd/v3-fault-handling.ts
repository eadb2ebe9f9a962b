import {
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  noJitterGenerator,
  noop,
  type IBackoff,
  type IDefaultPolicyContext,
  type IPolicy,
} from 'cockatiel';
import { isRecoverableError, type IOptions } from 'etcd3';
import { looksLikeTls } from './errors.js';

/**
 * How the etcd3 library (1.1.2) copes with a member that fails, tuned for edgelb's one long
 * watch across several members.
 *
 * The library's default member policy opens a member's circuit after 3 failures in a row, for
 * 5 s. A watch never trips it: the library records a success when it opens the watch stream and
 * a failure when the stream breaks, so a dead member never fails 3 times in a row. After the
 * member holding the watch dies, every reconnect picks a member at random (a third of the time
 * the dead one, which fails) and waits a longer backoff each time: in 40 kills of the follower
 * holding the watch of a 3-member cluster (`npm run bench -- etcd-failover`) the watch resumed
 * after a median of 51 ms but a p99 of 508 ms and at worst 733 ms, and a change written
 * meanwhile waited as long. With this policy: at worst 70 ms.
 *
 * Here one failure opens a member's circuit, so the reconnect right after (within the watch
 * backoff's first step, under 70 ms) goes to a live member. It opens for 200 ms only: when every
 * circuit is open no call goes anywhere, and in a rolling restart the members that died a moment
 * ago are back already (with a 1 s circuit, a watch whose member died within a second of the
 * other two members' restarts resumed only after 0.6 to 1.5 s). A member that keeps failing stays
 * out longer, 200 ms doubling up to 1 s, between single trial calls. With a single endpoint there is no other
 * member to turn to and a circuit would only refuse calls gRPC can make: no circuit then.
 */
const CIRCUIT_OPEN = { generator: noJitterGenerator, initialDelay: 200, maxDelay: 1000 } as const;

/**
 * The library's watch reconnect backoff (its default grows to 30 s): from about 50 ms, capped
 * at a second, so a watch resumes within a second of a member answering again.
 */
const WATCH_BACKOFF = { initialDelay: 50, maxDelay: 1000 } as const;

/**
 * A refused TLS handshake is not the member's fault: every member has the same certificates, and
 * with the circuits open each retry of the source would fail with "circuit breaker is open"
 * ('unreachable') instead of the handshake error, so the code would flip between 'tls' and
 * 'unreachable' and /healthz lose the reason (found by test/integration/etcd-secured.test.ts, kept by
 * test/unit/v3-fault-handling.test.ts: gRPC reports the refused handshake as a recoverable UNAVAILABLE).
 */
function countsAgainstMember(error: Error): boolean {
  return isRecoverableError(error) && !looksLikeTls(error.message);
}

export function v3FaultHandling(endpointCount: number): NonNullable<IOptions['faultHandling']> {
  return {
    host: (): IPolicy<IDefaultPolicyContext> =>
      endpointCount > 1
        ? circuitBreaker(handleWhen(countsAgainstMember), { halfOpenAfter: new ExponentialBackoff(CIRCUIT_OPEN), breaker: new ConsecutiveBreaker(1) })
        : noop,
    // The library calls next() on it once to get its first backoff: a factory is what it needs at run time.
    watchBackoff: new ExponentialBackoff(WATCH_BACKOFF) as unknown as IBackoff<unknown>,
  };
}
