import { Resolver } from 'node:dns/promises';
import type { Logger } from '../log.js';
import type { DnsRecord } from './dns-publisher.js';
import { decodeAnswer, type DnsServer, exchange, formatServer, queryMessage, txtValues } from './dns-wire.js';
import { AcmeError, interrupted } from './interruption.js';

export interface PropagationOptions {
  /** KONTENA_LB_ACME_DNS_RESOLVERS: asked directly; otherwise the zone's authoritative servers. */
  readonly resolvers?: readonly DnsServer[];
  /** How long to wait for every server to show the record (default 2 min). */
  readonly timeoutMs: number;
  /** Between two rounds of queries (default 1 s). */
  readonly pollMs: number;
  /** Per query (default 3 s). */
  readonly queryTimeoutMs: number;
}

/**
 * Waits until `record` is visible on every server that matters before the CA is asked to
 * validate (a CA that looks too early fails the authorization, and failed validations are rate
 * limited): the configured resolvers, or else the zone's authoritative servers, found through
 * the system resolver (the SOA of the nearest enclosing zone, its NS names, their addresses)
 * and asked directly, so no cache stands between. Past the deadline the attempt fails.
 */
export async function waitPropagated(record: DnsRecord, options: PropagationOptions, log: Logger, signal: AbortSignal): Promise<void> {
  const started = Date.now();
  const servers = options.resolvers ?? (await authoritativeServers(record.fqdn));
  const recursion = options.resolvers !== undefined;
  const deadline = started + options.timeoutMs;
  let missing = servers.map(formatServer);
  let lastProblem = '';
  for (;;) {
    const results = await Promise.all(
      servers.map(async (server) => {
        try {
          const answer = decodeAnswer(server, await exchange(server, queryMessage(record.fqdn, 'TXT', recursion), options.queryTimeoutMs));
          return txtValues(answer, record.fqdn).includes(record.value);
        } catch (error) {
          lastProblem = (error as Error).message;
          return false;
        }
      }),
    );
    missing = servers.filter((_, i) => !results[i]).map(formatServer);
    if (missing.length === 0) {
      log.info({ fqdn: record.fqdn, servers: servers.map(formatServer), afterMs: Date.now() - started }, 'ACME DNS record visible');
      return;
    }
    if (Date.now() + options.pollMs > deadline) {
      throw new AcmeError(
        'dns-not-propagated',
        `the TXT record ${record.fqdn} was not visible on ${missing.join(', ')} within ${Math.round(options.timeoutMs / 1000)} s${lastProblem ? ` (${lastProblem})` : ''}`,
      );
    }
    await pause(options.pollMs, signal);
  }
}

/** The addresses (port 53) of the authoritative servers of the zone holding `fqdn`. */
export async function authoritativeServers(
  fqdn: string,
  resolver: Pick<Resolver, 'resolveSoa' | 'resolveNs' | 'resolve4' | 'resolve6'> = new Resolver(),
): Promise<DnsServer[]> {
  const zone = await enclosingZone(fqdn, resolver);
  const names = await resolver.resolveNs(zone).catch((error: Error) => {
    throw new AcmeError('dns-not-propagated', `cannot find the name servers of ${zone}: ${error.message}`);
  });
  // IPv4 and IPv6: a zone may have name servers reachable by one only.
  const none = () => [] as string[];
  const addresses = (await Promise.all(names.flatMap((name) => [resolver.resolve4(name).catch(none), resolver.resolve6(name).catch(none)]))).flat();
  if (addresses.length === 0) throw new AcmeError('dns-not-propagated', `no address for the name servers of ${zone} (${names.join(', ')})`);
  return [...new Set(addresses)].sort().map((host) => ({ host, port: 53 }));
}

/** The nearest name at or above `fqdn` that has an SOA record. */
async function enclosingZone(fqdn: string, resolver: Pick<Resolver, 'resolveSoa'>): Promise<string> {
  const labels = fqdn.replace(/\.$/, '').split('.');
  for (let i = 0; i < labels.length - 1; i++) {
    const candidate = labels.slice(i).join('.');
    if (
      await resolver.resolveSoa(candidate).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  throw new AcmeError('dns-not-propagated', `cannot find the zone of ${fqdn} (no SOA at any of its parents)`);
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  const interruption = interrupted(signal);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([new Promise((resolve) => (timer = setTimeout(resolve, ms))), interruption.promise]);
  } finally {
    clearTimeout(timer);
    interruption.dispose();
  }
}
