import { compare } from '../model/parse.js';
import type { Logger } from '../log.js';
import { changedServices, findService } from '../model/state-changes.js';
import type { DesiredState, HttpService } from '../model/types.js';
import { EntryError, parseHostPattern } from '../model/values.js';

/** A name that was asked for but gets no ACME certificate, and why (one log line each). */
export interface SkippedDomain {
  readonly domain: string;
  readonly reason: string;
  /** Who asked for it: `KONTENA_LB_ACME_DOMAINS` or `services/<name>`. */
  readonly source: string;
}

export interface AcmeDomains {
  /** Exact DNS names to hold a certificate for, one certificate each; sorted, no duplicates. */
  readonly domains: string[];
  readonly skipped: SkippedDomain[];
}

export const ENV_SOURCE = 'KONTENA_LB_ACME_DOMAINS';

export type ChallengeType = 'http-01' | 'dns-01';

/** How `domain` is validated: a wildcard only by DNS-01; an exact name by `preferred` (default HTTP-01). */
export function challengeOf(domain: string, preferred: ChallengeType = 'http-01'): ChallengeType {
  return domain.startsWith('*.') ? 'dns-01' : preferred;
}

/** Why a wildcard gets no certificate when no DNS publisher is configured. */
export const WILDCARD_WITHOUT_DNS =
  'a wildcard: only DNS-01 can validate it, and no DNS publisher is configured (set KONTENA_LB_ACME_DNS_HOOK or KONTENA_LB_ACME_RFC2136_SERVER)';

/**
 * The names edgelb should obtain certificates for over ACME: every name in
 * KONTENA_LB_ACME_DOMAINS plus the virtual hosts of every HTTP service whose `acme` key is true.
 * Pure.
 *
 * A wildcard `*.example.com` is one certificate of its own (validated by DNS-01), for the
 * wildcard only: `example.com` is another name, wanted when it is listed too. Left out, each with
 * a reason: wildcards when `dns01` is false (no DNS publisher), IP addresses and single-label
 * names such as `localhost` (no public CA issues for them), and names that are not valid host
 * names. A name both skipped somewhere and wanted elsewhere is wanted.
 */
export function acmeDomains(state: DesiredState, envDomains: readonly string[], dns01 = false): AcmeDomains {
  const wanted = new Set<string>();
  const skipped = new Map<string, SkippedDomain>();
  const consider = (raw: string, source: string) => {
    let name: string;
    let wildcard: boolean;
    try {
      ({ name, wildcard } = parseHostPattern(raw.replace(/\.$/, '')));
    } catch (error) {
      if (!(error instanceof EntryError)) throw error;
      skip({ domain: raw.trim(), source, reason: 'not a valid host name' });
      return;
    }
    const domain = wildcard ? `*.${name}` : name;
    const reason = wildcard && !dns01 ? WILDCARD_WITHOUT_DNS : unsupported(name);
    if (reason !== undefined) skip({ domain, source, reason });
    else wanted.add(domain);
  };
  const skip = (entry: SkippedDomain) => {
    const key = `${entry.domain}\u0000${entry.source}`;
    if (!skipped.has(key)) skipped.set(key, entry);
  };

  for (const raw of envDomains) {
    if (raw.trim() !== '') consider(raw, ENV_SOURCE);
  }
  for (const service of state.http) {
    if (!service.acme) continue;
    const source = `services/${service.name}`;
    if (service.virtualHosts.length === 0) {
      skip({ domain: '', source, reason: 'acme is true but the service has no virtual_hosts' });
      continue;
    }
    for (const host of service.virtualHosts) consider(host.wildcard ? `*.${host.name}` : host.name, source);
  }

  return {
    domains: [...wanted].sort(compare),
    skipped: [...skipped.values()].filter((s) => !wanted.has(s.domain)).sort((a, b) => compare(a.domain, b.domain) || compare(a.source, b.source)),
  };
}

/** Parses KONTENA_LB_ACME_DOMAINS: names separated by commas and/or white space. */
export function splitDomainList(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(/[\s,]+/)
    .map((d) => d.trim())
    .filter(Boolean);
}

function unsupported(name: string): string | undefined {
  if (/^[0-9.]+$/.test(name) || /^[0-9]+$/.test(name.slice(name.lastIndexOf('.') + 1))) {
    return 'an IP address: HTTP-01 certificates are for DNS names';
  }
  if (!name.includes('.')) return 'not a fully qualified name (a public CA only issues for names under a public suffix)';
  return undefined;
}

/**
 * The domains wanted, kept from the parsed routes the controller hands over (only the services
 * that changed since the last routes are looked at) and KONTENA_LB_ACME_DOMAINS. Logs each name
 * newly skipped and each change of the set once.
 */
export class WantedDomains {
  /** The routes last offered, and those of its HTTP services that ask for certificates (acme: true), by name. */
  private routes: DesiredState | undefined;
  private readonly acmeServices = new Map<string, HttpService>();
  private envDomains: readonly string[];
  private desired: readonly string[] = [];
  private skippedNow: readonly SkippedDomain[] = [];

  constructor(
    envDomains: readonly string[],
    private readonly logger: Logger,
    /** A DNS publisher is configured: wildcards are wanted. */
    private readonly dns01 = false,
  ) {
    this.envDomains = envDomains;
  }

  get domains(): readonly string[] {
    return this.desired;
  }

  get skipped(): readonly SkippedDomain[] {
    return this.skippedNow;
  }

  /** New routes; true when the domains wanted changed. */
  offerRoutes(routes: DesiredState): boolean {
    const first = this.routes === undefined;
    let changed = false;
    for (const key of changedServices(this.routes, routes)) {
      if (!key.startsWith('http:')) continue;
      const name = key.slice('http:'.length);
      const service = findService(routes, key) as HttpService | undefined;
      if (service?.acme) this.acmeServices.set(name, service);
      if (service?.acme || this.acmeServices.delete(name)) changed = true;
    }
    this.routes = routes;
    return (changed || first) && this.update();
  }

  /** KONTENA_LB_ACME_DOMAINS; true when the domains wanted changed. */
  setEnvDomains(domains: readonly string[]): boolean {
    this.envDomains = [...domains];
    return this.update();
  }

  private update(): boolean {
    const http = [...this.acmeServices.values()].sort((a, b) => compare(a.name, b.name));
    const { domains, skipped } = acmeDomains({ http, tcp: [] }, this.envDomains, this.dns01);
    const skippedKey = (list: readonly SkippedDomain[]) => list.map((s) => `${s.source}|${s.domain}|${s.reason}`).join('\n');
    if (skippedKey(skipped) !== skippedKey(this.skippedNow)) {
      const before = new Set(this.skippedNow.map((s) => `${s.source}|${s.domain}`));
      for (const s of skipped) {
        if (!before.has(`${s.source}|${s.domain}`)) {
          // A wildcard without a publisher is a configuration to fix, not a name no CA serves.
          const level = s.reason === WILDCARD_WITHOUT_DNS ? 'warn' : 'info';
          this.logger[level]({ domain: s.domain, source: s.source, reason: s.reason }, 'ACME: no certificate will be ordered for this name');
        }
      }
    }
    this.skippedNow = skipped;
    if (domains.join(',') === this.desired.join(',')) return false;
    const added = domains.filter((d) => !this.desired.includes(d));
    const removed = this.desired.filter((d) => !domains.includes(d));
    this.desired = domains;
    this.logger.info({ domains, added, removed }, 'ACME domains changed');
    if (removed.length > 0) this.logger.info({ removed }, 'ACME: no longer ordering for these names; their certificates stay in the vault until removed');
    return true;
  }
}
