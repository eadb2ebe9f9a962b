import type { AcmeDomainState } from '../acme/state.js';
import type { HostPattern } from '../model/types.js';
import type { CertSet } from './store.js';

// Issue 16: certificate trouble an operator can see coming, before a client does. The same list
// for the controller's log, /status, the dashboard and `edgelb cert list`.

export type CertWarningKind = 'expiring' | 'renewal_failing' | 'default_only';

export interface CertWarning {
  readonly kind: CertWarningKind;
  /** The certificate (its id) for `expiring`, the domain for `renewal_failing`, the host for `default_only`. */
  readonly subject: string;
  readonly detail: string;
  /** When the condition began (ISO 8601), when known. */
  readonly since: string | undefined;
}

export interface CertWarningInputs {
  readonly certs: CertSet;
  /** The HTTP services' host names. */
  readonly hosts: readonly HostPattern[];
  /** The ACME state of each domain (`acme/state/<domain>`). */
  readonly acme: readonly AcmeDomainState[];
  /**
   * The domains ACME is asked for now (acme/domains.ts acmeDomains). A state of another domain is
   * history: its service was removed or renamed and nothing renews it any more, so its failures
   * are no failing renewal. Undefined: not known (ACME not started yet), every state counts.
   */
  readonly acmeDomains?: readonly string[];
  readonly now: Date;
  /** KONTENA_LB_CERT_WARN_DAYS. */
  readonly warnDays: number;
}

const DAY_MS = 86_400_000;
/** How long ACME renewal may fail before it is a warning: the CA's transient trouble is retried with backoff meanwhile. */
export const RENEWAL_FAILING_AFTER_MS = DAY_MS;

/**
 * The certificate warnings at `now`. Pure. `expiring`: a served certificate whose notAfter is
 * within `warnDays` (or past). `renewal_failing`: an ACME domain failing for longer than a day
 * (since its first failure in a row). `default_only`: a host of an HTTP service that no served
 * certificate's names cover, so HTTPS clients get the default certificate and a name mismatch;
 * only while an HTTPS listener exists (at least one certificate served). Sorted by kind, subject.
 */
export function certificateWarnings(inputs: CertWarningInputs): CertWarning[] {
  const { certs, now, warnDays } = inputs;
  const warnings: CertWarning[] = [];
  for (const { bundle, sni } of certs.served) {
    const leftMs = bundle.notAfter.getTime() - now.getTime();
    if (leftMs >= warnDays * DAY_MS) continue;
    const when = bundle.notAfter.toISOString();
    const names = sni.length > 0 ? sni.join(', ') : 'the default';
    warnings.push({
      kind: 'expiring',
      subject: bundle.id,
      detail: leftMs <= 0 ? `expired ${when}, still served for ${names}` : `expires ${when} (${inDays(Math.floor(leftMs / DAY_MS))}), served for ${names}`,
      // Expired: since it expired, so the moment it does is a new warning (logged again).
      since: leftMs <= 0 ? when : new Date(bundle.notAfter.getTime() - warnDays * DAY_MS).toISOString(),
    });
  }
  const wanted = inputs.acmeDomains && new Set(inputs.acmeDomains);
  for (const state of inputs.acme) {
    if (wanted && !wanted.has(state.domain)) continue;
    // Failures in a row, not only 'failing': each retry writes the state 'pending' while its order runs.
    if (state.status === 'valid' || state.failures === 0) continue;
    const since = state.failingSince ?? state.lastError?.at;
    if (since === undefined || now.getTime() - Date.parse(since) <= RENEWAL_FAILING_AFTER_MS) continue;
    warnings.push({
      kind: 'renewal_failing',
      subject: state.domain,
      detail: `ACME has failed ${state.failures} times in a row; last error: ${state.lastError?.message ?? 'unknown'}`,
      since,
    });
  }
  const defaultCert = certs.served[0];
  if (defaultCert) {
    const exact = new Set(certs.served.flatMap((c) => c.sni.filter((n) => !n.startsWith('*.'))));
    const wild = new Set(certs.served.flatMap((c) => c.sni.filter((n) => n.startsWith('*.')).map((n) => n.slice(2))));
    for (const host of inputs.hosts) {
      const covered = host.wildcard ? wild.has(host.name) : exact.has(host.name) || wild.has(parentOf(host.name));
      if (covered) continue;
      const shown = host.wildcard ? `*.${host.name}` : host.name;
      warnings.push({
        kind: 'default_only',
        subject: shown,
        detail: `no served certificate covers ${shown}: HTTPS clients get the default certificate ${defaultCert.bundle.id}`,
        since: undefined,
      });
    }
  }
  return dedupe(warnings).sort((a, b) => compareText(a.kind, b.kind) || compareText(a.subject, b.subject));
}

/** `www.example.com` → `example.com` (what a `*.example.com` certificate covers: one label). */
function parentOf(name: string): string {
  const dot = name.indexOf('.');
  return dot < 0 ? '' : name.slice(dot + 1);
}

/** One warning per kind and subject (a host named by two services). */
function dedupe(warnings: readonly CertWarning[]): CertWarning[] {
  const seen = new Map<string, CertWarning>();
  for (const w of warnings) if (!seen.has(`${w.kind}\u0000${w.subject}`)) seen.set(`${w.kind}\u0000${w.subject}`, w);
  return [...seen.values()];
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** "in 3 days", "in 1 day", "within a day". */
function inDays(days: number): string {
  return days === 0 ? 'within a day' : `in ${days} ${days === 1 ? 'day' : 'days'}`;
}
